// docs/errors.md and src/errors.ts list the same codes with the same statuses.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';

it('documents every error code with its status, and no other', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  const code = Object.entries(ERROR_CODES).map(([k, v]) => [k, v.status]);
  expect(rows.sort()).toEqual(code.sort());
});
