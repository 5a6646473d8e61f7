// docs/handlers.md shows the examples users copy: each must be one that runs here. Every part
// of test/handler-example.test.ts between docs markers, and the handler module of
// test/fixtures/handlers-outside that test/handlers-outside.test.ts loads, appear in it verbatim.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const doc = readFileSync(new URL('../docs/handlers.md', import.meta.url), 'utf8');

it('docs/handlers.md holds the regions of test/handler-example.test.ts verbatim', () => {
  const test = readFileSync(new URL('./handler-example.test.ts', import.meta.url), 'utf8');
  const regions = [...test.matchAll(/\/\/ docs:begin\n([\s\S]*?)\/\/ docs:end/g)].map((m) => m[1]!);
  expect(regions).toHaveLength(2);
  for (const region of regions) {
    expect(region.length).toBeGreaterThan(200);
    expect(doc).toContain(region);
  }
});

it('docs/handlers.md holds the outside handler the tests load from HANDLERS_DIR verbatim', () => {
  const module = readFileSync(new URL('./fixtures/handlers-outside/notify-dispatch.mjs', import.meta.url), 'utf8');
  expect(doc).toContain(module);
});

it('docs/handlers.md opens with the handler of test/fixtures/comment-on-new-task.ts (type-checked, run in testing-kit.test.ts)', () => {
  const module = readFileSync(new URL('./fixtures/comment-on-new-task.ts', import.meta.url), 'utf8');
  expect(doc).toContain(`\`\`\`ts\n${module}\`\`\``);
});

it.each(['task-timeline', 'task-settled', 'task-changed'])(
  'docs/handlers.md shows %s of test/fixtures (run in handler-flow.test.ts and reconcile.test.ts) verbatim',
  (name) => {
    const module = readFileSync(new URL(`./fixtures/${name}.ts`, import.meta.url), 'utf8');
    expect(doc).toContain(`\`\`\`ts\n${module}\`\`\``);
  },
);
