/**
 * Small, fast, seeded pseudo-random helpers. Everything the sandbox generates is a pure function of
 * (seed, type, index, …) so a resource can be regenerated on demand instead of being stored.
 */

function fmix32(input: number): number {
  let h = input | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixPart(h: number, part: number): number {
  let out = fmix32(Math.imul(h ^ (part >>> 0), 0x01000193) + 0x9e3779b9);
  const high = Math.floor(part / 0x1_0000_0000) >>> 0;
  if (high !== 0) out = fmix32(Math.imul(out ^ high, 0x01000193) + 0x7f4a7c15);
  return out;
}

/** Mixes integer parts (each up to 2^53) into one unsigned 32-bit hash. Fixed arity: no array allocation. */
export function hash32(a: number, b: number, c?: number, d?: number): number {
  let h = mixPart(mixPart(0x811c9dc5, a), b);
  if (c !== undefined) h = mixPart(h, c);
  if (d !== undefined) h = mixPart(h, d);
  return h;
}

/** mulberry32: tiny and good enough for synthetic data. A class, not closures, so creating one is cheap. */
export class Rng {
  private state: number;
  constructor(seed32: number) {
    this.state = seed32 | 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    const s = this.state;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
}

export function createRng(seed32: number): Rng {
  return new Rng(seed32);
}

export function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
