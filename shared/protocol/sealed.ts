// Protocol: state the protocol hands a use case between two of its calls, which the use case carries back unread.

declare const sealed: unique symbol;

/** A handle a use case can hold and give back (commitChange, finishRepeat), but not read, change or build. */
export interface Sealed<Name extends string> {
  readonly [sealed]: Name;
}

/**
 * Keeps the protocol's own snapshot out of the use case's reach at run time, not only in the types: the
 * handle is an empty frozen object and the state stays here, so a use case cannot decide on, alter or
 * forge what the protocol read, and a handle of another kind does not open.
 */
export class Seal<Name extends string, State extends object> {
  private readonly contents = new WeakMap<Sealed<Name>, State>();

  seal(state: State): Sealed<Name> {
    const handle = Object.freeze({}) as Sealed<Name>;
    this.contents.set(handle, state);
    return handle;
  }

  open(handle: Sealed<Name>): State {
    const state = this.contents.get(handle);
    if (!state) throw new Error('This handle was not sealed by this protocol.');
    return state;
  }
}
