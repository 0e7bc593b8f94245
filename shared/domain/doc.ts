/**
 * API documentation carried by a schema (zod `.meta()`): the field's display name in Power Automate
 * (`x-ms-summary`), a sentence for the description, and connector hints such as `x-ms-visibility`.
 * The same schema validates requests and generates the API definition, so the two cannot drift.
 */
/** A connector field's x-ms-visibility: how prominently Power Automate shows it. */
export type ConnectorVisibility = 'important' | 'advanced' | 'internal';

export const doc = (
  summary: string,
  description: string,
  extra: { visibility?: ConnectorVisibility; [key: string]: unknown } = {},
) => {
  const { visibility, ...rest } = extra;
  return { 'x-ms-summary': summary, description, ...(visibility && { 'x-ms-visibility': visibility }), ...rest };
};
