import { z } from 'zod';

/**
 * Dates as the API takes and keeps them. Any ISO 8601 date or date-time with an offset is accepted and
 * kept as its instant in one form, UTC with a four-digit year and milliseconds
 * (YYYY-MM-DDTHH:mm:ss.sssZ): strings of that form sort as their instants do, which is what lets
 * storage filter windows by comparing strings. Dataverse's range (0001-01-01 to 9999-12-31 in UTC) is
 * exactly the range where that form holds; beyond it JavaScript writes years with six digits and a sign.
 */
export const MIN_INSTANT = '0001-01-01T00:00:00.000Z';
export const MAX_INSTANT = '9999-12-31T23:59:59.999Z';
const [MIN_TIME, MAX_TIME] = [Date.parse(MIN_INSTANT), Date.parse(MAX_INSTANT)];

/** The instant an ISO date or date-time names, in the normalised form; undefined when out of range or no date. */
export function normaliseInstant(value: string): string | undefined {
  const time = Date.parse(value);
  if (Number.isNaN(time) || time < MIN_TIME || time > MAX_TIME) return undefined;
  return new Date(time).toISOString();
}

/** Milliseconds since the epoch, for comparing instants whatever form they were written in. */
export const instantOf = (value: string): number => Date.parse(value);

/** An ISO 8601 date or date-time with offset, kept as its normalised UTC instant. */
export const isoInstant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((value, context) => {
  const instant = normaliseInstant(value);
  if (instant === undefined) {
    context.addIssue({ code: 'custom', message: `must lie between ${MIN_INSTANT} and ${MAX_INSTANT} once in UTC` });
    return z.NEVER;
  }
  return instant;
});

/**
 * A query string's form encoding turns an unencoded "+" into a space, so "...T00:00:00+02:00" arrives as
 * "...T00:00:00 02:00": read that space as the "+" it was (a space is never valid there otherwise).
 */
export const restorePlusOffset = (value: unknown): unknown =>
  typeof value === 'string'
    ? value.replace(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$/, '$1+$2')
    : value;
