// Dev, simulation: the seeded random number generator every schedule draws from.
/**
 * xoshiro128** (Blackman and Vigna), seeded through splitmix32: small, fast, and the same sequence on
 * every machine for a given seed, which is all a simulation needs (Math.random cannot be seeded).
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // Both halves of a (safe) integer seed count, so seeds 1 and 2^32 + 1 differ.
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x1_0000_0000) >>> 0, 0x9e3779b9);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** The next 32 random bits, as an unsigned integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** In [0, 1). */
  random(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** An integer in [0, n), for n from 1 to 2^32. */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Cannot pick from nothing.');
    return items[this.int(items.length)] as T;
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
