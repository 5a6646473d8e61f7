// docs/errors.md and src/errors.ts list the same answer codes with the same statuses, and the same
// error classes with the same codes, which the classes really carry.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as errors from '../src/errors.js';
import { ERROR_CLASSES, ERROR_CODES } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

it('documents every error code with its status, and no other', () => {
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  const code = Object.entries(ERROR_CODES).map(([k, v]) => [k, v.status]);
  expect(rows.sort()).toEqual(code.sort());
});

it('documents every error class with its code, and each class carries that code', () => {
  const rows = [...doc.matchAll(/^\| `([A-Za-z]+Error)` \| (`[A-Z_]+`|the answer code it is made with) \|/gm)].map((m) => [
    m[1],
    m[2]!.replaceAll('`', ''),
  ]);
  const listed = Object.entries(ERROR_CLASSES).map(([k, v]) => [
    k,
    v === 'the code it is made with' ? 'the answer code it is made with' : v,
  ]);
  expect(rows.sort()).toEqual(listed.sort());
  const classes = errors as unknown as Record<string, new (...a: never[]) => Error & { code: string }>;
  const made: Record<string, (C: new (...a: never[]) => Error & { code: string }) => Error & { code: string }> = {
    HttpError: (C) => new (C as unknown as new (c: string, m: string) => Error & { code: string })('NOT_FOUND', 'x'),
    HandlerTimeoutError: (C) => new (C as unknown as new (ms: number) => Error & { code: string })(5),
    ConfigError: (C) => new (C as unknown as new (p: unknown[]) => Error & { code: string })([]),
    HandlerLoadError: (C) => new (C as unknown as new (f: string, p: string) => Error & { code: string })('f', 'p'),
  };
  for (const [name, code] of Object.entries(ERROR_CLASSES)) {
    const C = classes[name];
    expect(C, name).toBeTypeOf('function');
    const e = (made[name] ?? ((K) => new (K as unknown as new (m: string) => Error & { code: string })('x')))(C!);
    expect(e.name, name).toBe(name);
    if (name !== 'HttpError') expect(e.code, name).toBe(code);
    if (Object.hasOwn(ERROR_CODES, e.code))
      expect(name === 'HttpError' || ERROR_CODES[e.code as keyof typeof ERROR_CODES].status < 600).toBe(true);
  }
});
