import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../scripts/localHost';

describe('route templates on the local host', () => {
  it('match literal segments case-insensitively and capture parameters', () => {
    expect(matchRoute('records/{recordid}/connections', 'Records/abc/connections')).toEqual({ recordid: 'abc' });
    expect(matchRoute('records/{recordid}/connections/{connectionid:guid}', 'records/a/connections/b')).toEqual({ recordid: 'a', connectionid: 'b' });
    expect(matchRoute('health', 'health')).toEqual({});
  });

  it('do not match other shapes', () => {
    expect(matchRoute('records/{recordid}/connections', 'records/abc')).toBeUndefined();
    expect(matchRoute('records/{recordid}/connections', 'records/abc/connections/x')).toBeUndefined();
    expect(matchRoute('connections', 'connection')).toBeUndefined();
  });

  it('allow optional parameters and decode percent-encoding', () => {
    expect(matchRoute('items/{id?}', 'items')).toEqual({});
    expect(matchRoute('items/{id}', 'items/a%20b')).toEqual({ id: 'a b' });
    expect(matchRoute('items/{id}', 'items/%E0%A4%A')).toEqual({ id: '%E0%A4%A' });
  });
});
