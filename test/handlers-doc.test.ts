// docs/handlers.md shows the handler test users copy: it must be the one that runs here.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

it('docs/handlers.md holds test/handler-example.test.ts verbatim', () => {
  const test = readFileSync(new URL('./handler-example.test.ts', import.meta.url), 'utf8');
  const region = test.slice(test.indexOf('// docs:begin\n') + '// docs:begin\n'.length, test.indexOf('// docs:end'));
  expect(region.length).toBeGreaterThan(200);
  const doc = readFileSync(new URL('../docs/handlers.md', import.meta.url), 'utf8');
  expect(doc).toContain(region);
});
