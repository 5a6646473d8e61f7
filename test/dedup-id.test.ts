// The content hash is a stored event's id: it must not change from one version to the next (a
// retry after an upgrade must still be a duplicate), and the fast paths of canonicalJson must
// give exactly the JSON of the plain definition: keys sorted at every level, JSON.stringify for
// every string and number.
import { describe, expect, it } from 'vitest';
import { canonicalJson, contentId } from '../src/events/dedup-id.js';

/** The definition, written the plain way. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts = Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`);
  return `{${parts.join(',')}}`;
}

const SAMPLES: unknown[] = [
  { EventID: 41, AssetID: 550123, Name: 'plain' },
  { a: 1, b: 2, c: { d: 3, e: [4, 5] } }, // already sorted: the sort is skipped
  { 'quote"key': 'say "hi"', 'back\\slash': 'C:\\temp', tab: 'a\tb', nl: 'line\nline', nul: 'a\u0000b', del: '\u007f' },
  { emoji: '😀 paired surrogates', lone: 'x\ud800y', loneLow: '\udc00', sep: '\u2028\u2029', umlaut: 'Kältemaschine' },
  { long: 'x'.repeat(300), longEscaped: `${'y'.repeat(300)}"` },
  { n: [0, -0, 1.5, -2e-7, 1e21, 123456789012345680000], t: true, f: false, z: null, empty: '', arr: [], obj: {} },
  { B: 1, a: 2, _: 3, '10': 4, '9': 5, Ä: 6, é: 7 }, // integer-like keys come first in JS; sort() decides
  [{ z: 1, a: [{ y: 2, b: 3 }] }, 'top-level array', 7],
  'a string alone',
  { skipped: undefined, kept: 1 },
];

describe('canonicalJson', () => {
  it.each(SAMPLES.map((s) => [reference(s).slice(0, 40), s]))('matches the plain definition: %s', (_name, sample) => {
    expect(canonicalJson(sample)).toBe(reference(sample));
  });

  it('is the same for the same content in any key order', () => {
    expect(canonicalJson({ b: { y: 1, x: 2 }, a: 1 })).toBe(canonicalJson({ a: 1, b: { x: 2, y: 1 } }));
  });
});

describe('contentId', () => {
  it('is unchanged from earlier versions (ids already stored stay duplicates)', () => {
    // Pinned with the implementation of 2026-11-28 (createHash over the plain canonical JSON).
    expect(contentId({ EventID: 41, AssetID: 550123, Name: 'Kältemaschine "B"\n', Tags: ['x', { b: 1, a: [true, null, 1.5] }] })).toBe(
      '82b6fab8a369b240572c0a0b83f61839',
    );
    expect(contentId([{ z: 1, a: '😀\u2028' }])).toBe('de6a7b7cc00a06b152fc585d16d08674');
  });
});
