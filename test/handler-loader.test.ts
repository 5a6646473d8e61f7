// The handler loader: the shipped handlers/, HANDLERS_DIR modules, and a start that stops with
// the file's name when a module is wrong.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILTIN_HANDLERS_DIR, HandlerLoadError, loadHandlers } from '../src/delivery/loader.js';
import { RouterStartError, spawnRouter } from './support/spawn-router.js';
import { tempDir } from './support/test-app.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function folder(files: Record<string, string>): string {
  const { dir, remove } = tempDir('hubex-router-handlers-');
  cleanups.push(remove);
  for (const [name, source] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), source);
  }
  return dir;
}

const OK = "export default { on: '*', handle() {} };\n";

describe('loadHandlers', () => {
  it('loads .js and .mjs modules in name order, names them after their file unless they say otherwise, and skips the rest', async () => {
    const dir = folder({
      'b-second.mjs': OK,
      'a-first.js': "export default { name: 'custom-name', on: ['task.created', 12], handle() {} };\n",
      'c-off.mjs': 'export default { on: 40, enabled: false, handle() {} };\n',
      'README.md': '# not a module',
      '_shared.mjs': 'export const helper = 1;\n',
      'b-second.test.mjs': 'throw new Error("tests are not handlers");\n',
      '.hidden.mjs': 'throw new Error("hidden");\n',
      'package.json': '{"type":"module"}',
    });
    const handlers = await loadHandlers([{ dir, required: true }]);
    expect(handlers.map((h) => [h.name, h.on, h.enabled ?? true])).toEqual([
      ['custom-name', ['task.created', 12], true],
      ['b-second', ['*'], true],
      ['c-off', [40], false],
    ]);
  });

  it('loads the shipped handlers/ folder (the log-events example is there)', async () => {
    const handlers = await loadHandlers([{ dir: BUILTIN_HANDLERS_DIR }]);
    expect(handlers.map((h) => h.name)).toContain('log-events');
  });

  it.each([
    ['no default export', 'export const on = "*";\n', /no default export/],
    ['no handle function', "export default { on: '*' };\n", /handle is not a function/],
    ['no event to match', 'export default { on: [], handle() {} };\n', /on must be/],
    ['a bad selector', 'export default { on: [{}], handle() {} };\n', /on must be/],
    ['a where that is not a function', "export default { on: '*', where: true, handle() {} };\n", /where is not a function/],
    ['a name with spaces', "export default { name: 'my handler', on: '*', handle() {} };\n", /name must be/],
    ['a module that throws', 'throw new Error("boom at import");\n', /failed to load: boom at import/],
    ['a syntax error', 'export default {\n', /failed to load/],
  ])('refuses a module with %s, naming the file', async (_label, source, message) => {
    const dir = folder({ 'ok.mjs': OK, 'broken.mjs': source });
    const err = await loadHandlers([{ dir }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect((err as HandlerLoadError).file).toBe(join(dir, 'broken.mjs'));
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message.startsWith(join(dir, 'broken.mjs'))).toBe(true);
  });

  it('refuses two handlers with one name, naming both files', async () => {
    const first = folder({ 'notify.mjs': OK });
    const second = folder({ 'other.mjs': "export default { name: 'notify', on: '*', handle() {} };\n" });
    const err = (await loadHandlers([{ dir: first }, { dir: second }]).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect(err.message).toContain(join(second, 'other.mjs'));
    expect(err.message).toContain(join(first, 'notify.mjs'));
    expect(err.message).toMatch(/"notify" is already loaded/);
  });

  it('refuses a HANDLERS_DIR that does not exist', async () => {
    await expect(loadHandlers([{ dir: '/nonexistent/handlers', required: true }])).rejects.toThrow(/HANDLERS_DIR is not a folder/);
  });
});

it('a wrong module in HANDLERS_DIR stops the start with exit code 78 and a message that names the file', async () => {
  const handlersDir = folder({ 'broken.mjs': "export default { on: '*' };\n" });
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  const err = (await spawnRouter({ dataDir: dir, env: { HANDLERS_DIR: handlersDir } }).catch((e: unknown) => e)) as Error;
  expect(err).toBeInstanceOf(RouterStartError);
  expect(err.message).toMatch(/exited before listening \(code 78/);
  expect(err.message).toContain(`cannot load a handler: ${join(handlersDir, 'broken.mjs')}: handle is not a function`);
});
