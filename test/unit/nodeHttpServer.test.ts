import { describe, expect, it } from 'vitest';
import { matchRoute, requestUrl } from '../../shared/hosts/nodeHttp/server';

describe('route templates on the local host', () => {
  it('match literal segments case-insensitively and capture parameters', () => {
    expect(matchRoute('records/{recordid}/connections', 'Records/abc/connections')).toEqual({ recordid: 'abc' });
    expect(matchRoute('records/{recordid}/connections/{connectionid:guid}', 'records/a/connections/b')).toEqual({
      recordid: 'a',
      connectionid: 'b',
    });
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

  it('take the URL from a Host header only when it is a host, with a port up to 65535', () => {
    expect(requestUrl('/api/health?x=1', 'localhost:7071')?.toString()).toBe('http://localhost:7071/api/health?x=1');
    expect(requestUrl('/api/health', '[::1]:65535')?.host).toBe('[::1]:65535');
    expect(requestUrl('/api/health', 'record-connections.azurewebsites.net')?.host).toBe(
      'record-connections.azurewebsites.net',
    );
    for (const host of [undefined, '', 'a b', '[', ':::', 'a:99999', 'a:65536', 'a@b', 'a/b', 'a?b', '-a', 'a..b']) {
      expect(requestUrl('/api/health', host), String(host)).toBeUndefined();
    }
    expect(requestUrl('http://elsewhere/api/health', 'localhost')).toBeUndefined();
    expect(requestUrl('*', 'localhost')).toBeUndefined();
  });
});
