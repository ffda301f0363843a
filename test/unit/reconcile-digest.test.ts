import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalContent, canonicalText } from '../../lib/reconcile/digest.js';

// Synthetic data only.
/** A small deterministic PRNG (mulberry32), so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'B', 'é', 'z', '_a', '\u{1F600}', '\u00e9t', 'aa', '', '10', '9', 'A\u0000', 'ü', 'ſ'];
const STRINGS = [
  '',
  'plain',
  'quote " and \\ backslash',
  'tab\tnewline\n',
  '\u0001\u001f',
  'é\u2028\u2029',
  '\u{1F600}',
];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.1 + 0.2, 1e21, 1e-7, 123456789012345680000, 5e-324, 1.7976931348623157e308, 42.5];

function randomValue(next: () => number, depth: number): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const kind = depth > 3 ? Math.floor(next() * 4) : Math.floor(next() * 6);
  switch (kind) {
    case 0:
      return pick(STRINGS);
    case 1:
      return pick(NUMBERS);
    case 2:
      return pick([true, false, null]);
    case 3:
      return Math.floor(next() * 1e6) / (next() < 0.5 ? 1 : 1000);
    case 4:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 5); i > 0; i--) o[pick(KEYS)] = randomValue(next, depth + 1);
      return o;
    }
  }
}

describe('canonical text (RFC 8785)', () => {
  it('is what the canonicalize package writes, for 2,000 random JSON values', () => {
    const next = prng(13);
    for (let i = 0; i < 2_000; i++) {
      const value = JSON.parse(JSON.stringify(randomValue(next, 0))) as unknown;
      expect(canonicalText(value), `case ${i}`).toBe(canonicalize(value));
    }
  });

  it('sorts members by UTF-16 code units and writes numbers as ECMAScript does', () => {
    expect(canonicalText({ b: 1, a: [2, 'x'], '\u{1F600}': null, é: 1e21, _: -0 })).toBe(
      '{"_":0,"a":[2,"x"],"b":1,"é":1e+21,"\u{1F600}":null}',
    );
    expect(() => canonicalText(Number.NaN)).toThrow(RangeError);
  });

  it('leaves out the vendor-assigned elements of a resource, at the top level only', () => {
    const resource = {
      resourceType: 'Observation',
      id: 'o1',
      meta: { versionId: '2' },
      text: { div: 'x' },
      status: 'final',
      code: { text: 'Heart rate', id: 'kept' },
    };
    expect(canonicalContent(resource)).toBe('{"code":{"id":"kept","text":"Heart rate"},"status":"final"}');
  });
});
