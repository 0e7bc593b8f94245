// Protocol: state the protocol hands a use case between two of its calls, which the use case carries back unread.

declare const sealed: unique symbol;

/**
 * What the protocol read, sealed: a use case can hold it and give it back (commitChange, finishRepeat)
 * but not read or build one, so it cannot decide on, or forge, the protocol's own snapshot.
 */
export interface Sealed<Name extends string> {
  readonly [sealed]: Name;
}

/** Seals protocol state for the round trip through a use case. */
export function seal<Name extends string>(state: object): Sealed<Name> {
  return state as unknown as Sealed<Name>;
}

/** Opens what seal sealed; only the module that sealed it knows State. */
export function unseal<State extends object>(handle: Sealed<string>): State {
  return handle as unknown as State;
}
