// Domain: HTTP's conditional requests as Dataverse uses them, for connections and roles alike.

/** An If-Match condition: a list of strong ETags (one must match), or "*" for "whatever exists". */
export type IfMatch = '*' | string[];

/** Whether a resource whose current ETag is `etag` meets the condition (no condition is always met). */
export const meetsIfMatch = (ifMatch: IfMatch | undefined, etag: string): boolean =>
  ifMatch === undefined || ifMatch === '*' || ifMatch.includes(etag);
