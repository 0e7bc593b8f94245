import { describe, expect, it } from 'vitest';
import { buildObjectTypeRegistry, parseCustomObjectTypes } from '../../shared/domain/objectTypes';

describe('object type registry', () => {
  const base = buildObjectTypeRegistry('base');

  it('resolves the base codes of the Connection EntityType page by code or logical name', () => {
    expect(base.resolve(1)).toEqual({ code: 1, name: 'account' });
    expect(base.resolve('2')).toEqual({ code: 2, name: 'contact' });
    expect(base.resolve('SystemUser')).toEqual({ code: 8, name: 'systemuser' });
    expect(base.resolve('team')?.code).toBe(9);
    expect(base.resolve('appointment')?.code).toBe(4201);
    expect(base.resolve(' 4212 ')?.name).toBe('task');
  });

  it('knows nothing it was not given', () => {
    expect(base.resolve(12345)).toBeUndefined();
    expect(base.resolve('msdyn_ocsession')).toBeUndefined();
    expect(base.resolve('')).toBeUndefined();
  });

  it('gives the same solution table different codes in the Customer Service and Sales profiles', () => {
    const service = buildObjectTypeRegistry('customerservice');
    const sales = buildObjectTypeRegistry('sales');
    expect(service.resolve('msdyn_ocsession')?.code).toBe(10857);
    expect(sales.resolve('msdyn_ocsession')?.code).toBe(10747);
    expect(service.resolve(10747)).toBeUndefined();
    expect(sales.resolve(10857)).toBeUndefined();
    // A profile's codes replace the base codes of the same table.
    expect(service.resolve('mspp_website')?.code).toBe(10444);
    expect(service.resolve(10303)).toBeUndefined();
    expect(service.resolve('account')?.code).toBe(1);
  });

  it("adds an organisation's own types from configuration", () => {
    const registry = buildObjectTypeRegistry('base', parseCustomObjectTypes('10900:new_Project, 10901:new_site'));
    expect(registry.resolve('new_project')).toEqual({ code: 10900, name: 'new_project' });
    expect(registry.resolve(10901)?.name).toBe('new_site');
  });

  it('refuses configuration that would make a code or name ambiguous', () => {
    expect(() => buildObjectTypeRegistry('base', { new_thing: 1 })).toThrow(/code 1/);
    expect(() => buildObjectTypeRegistry('base', { account: 10900 })).toThrow(/already defined/);
    expect(() => parseCustomObjectTypes('project')).toThrow(/code:logicalname/);
  });

  it('lists every type once, by code', () => {
    const codes = base.list().map((type) => type.code);
    expect(codes).toEqual([...codes].sort((a, b) => a - b));
    expect(new Set(codes).size).toBe(codes.length);
  });
});
