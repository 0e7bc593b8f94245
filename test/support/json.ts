// Test support: the one loose type the tests read JSON through (HTTP answers, the API definition, templates).
//
// A test reads an answer freely (`body.value[0].connectionid`) and checks it with expect(); every answer an
// HTTP test receives is also checked against the definition the app serves (test/support/contract.ts). A
// type for each answer would repeat those schemas, and `unknown` would need a cast at every read, so this is
// the tests' one `any`, named and declared once (eslint.config.mjs turns off the no-unsafe-* rules in test/).

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the declared escape, see above
export type LooseJson = any;

/** A JSON object read loosely: an answer body, a definition or a template. */
export type Json = Record<string, LooseJson>;
