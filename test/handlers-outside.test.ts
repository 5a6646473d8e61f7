// A deployment's handlers live outside the repository, in a folder of their own with their own
// package.json and node_modules, and import the router by name ('hubex-router',
// 'hubex-router/testing'), as docs/handlers.md shows. Tried with the router as a user runs it:
// from the sources (a clone's `npm run dev`), and built into a package layout of its own (what
// `npm start`, an installed package and the container run: dist/ beside package.json).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, spawnRouter, type SpawnedRouter } from './support/spawn-router.js';
import { waitFor } from './support/wait.js';

let root: string;
let folders = 0;
const FIXTURES = fileURLToPath(new URL('./fixtures/handlers-outside/', import.meta.url));

/**
 * A handlers folder as a user would make one (test/fixtures/handlers-outside: the example
 * docs/handlers.md shows, a helper, a .js module), with a dependency of its own in node_modules.
 */
function handlersFolder(): string {
  const dir = join(root, `my-handlers-${++folders}`);
  cpSync(FIXTURES, dir, { recursive: true });
  mkdirSync(join(dir, 'node_modules', 'greeter'), { recursive: true });
  writeFileSync(
    join(dir, 'node_modules', 'greeter', 'package.json'),
    JSON.stringify({ name: 'greeter', version: '1.0.0', type: 'module', exports: './index.js' }),
  );
  writeFileSync(join(dir, 'node_modules', 'greeter', 'index.js'), 'export const greet = (id) => `hello asset ${id}`;\n');
  return dir;
}

async function post(router: SpawnedRouter, body: unknown): Promise<number> {
  const res = await fetch(router.url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

async function exercise(router: SpawnedRouter): Promise<void> {
  expect(await post(router, { EventID: 40, AssetID: 7 })).toBe(202);
  expect(await post(router, { EventID: 41, AssetID: 7 })).toBe(202);
  await waitFor(
    () => router.stdout,
    (out) => out.includes('"msg":"outside handler ran"') && out.includes('"msg":"second handler ran"'),
    { what: 'both outside handlers to run', timeoutMs: 15_000 },
  );
  const line = router.stdout.split('\n').find((l) => l.includes('"msg":"outside handler ran"'))!;
  expect(JSON.parse(line)).toMatchObject({
    greeting: 'hello asset 7',
    about: 'asset.created asset 7',
    testing: 'function',
    handler: 'notify-dispatch',
  });
  const second = router.stdout.split('\n').find((l) => l.includes('"msg":"second handler ran"'))!;
  expect(JSON.parse(second)).toMatchObject({ hubexError: 'function' });
  // PermanentError from 'hubex-router' is the router's own: the delivery is dead at once, not retried.
  expect(await post(router, { EventID: 40, AssetID: 666 })).toBe(202);
  await waitFor(
    () => router.stdout,
    (out) => out.includes('"msg":"gave up on an asset"'),
    { what: 'the PermanentError to make the delivery dead, and onDead to run', timeoutMs: 15_000 },
  );
  const dead = router.stdout.split('\n').find((l) => l.includes('"msg":"gave up on an asset"'))!;
  expect(JSON.parse(dead)).toMatchObject({ assetID: 666, reason: 'this asset is not ours' });
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hubex-outside-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a handler outside the repository that imports hubex-router', () => {
  it('loads and runs with the router started from its sources', async () => {
    const dir = handlersFolder();
    const router = await spawnRouter({ dataDir: join(root, 'data-src'), env: { HANDLERS_DIR: dir, LOG_EVENTS: 'false' } });
    await exercise(router);
  });

  it('loads and runs with the router built, run from a package folder of its own (npm start, installed, the container)', async () => {
    const dir = handlersFolder();
    const pkg = built();
    const router = await spawnRouter({
      dataDir: join(root, 'data-built'),
      env: { HANDLERS_DIR: dir, LOG_EVENTS: 'false' },
      // From a folder that is neither the package nor the handlers', as a service manager would.
      command: { args: [join(pkg, 'dist/src/main.js')], cwd: root },
    });
    await exercise(router);
  }, 120_000);

  it('stops the start (exit 78) for a TypeScript handler this Node cannot load, rather than leaving it out', async () => {
    const dir = handlersFolder();
    writeFileSync(join(dir, 'typed.ts'), 'export default { on: 40, handle() {} };\n');
    const typescript = Boolean((process.features as { typescript?: unknown }).typescript);
    const pkg = built();
    const start = spawnRouter({
      dataDir: join(root, 'data-ts'),
      env: { HANDLERS_DIR: dir, LOG_EVENTS: 'false' },
      command: { args: [join(pkg, 'dist/src/main.js')], cwd: root },
    });
    if (typescript) {
      await (await start).kill(); // this Node strips types: it loads (the loader test covers the rest)
      return;
    }
    await expect(start).rejects.toThrow(
      /exited before listening \(code 78[\s\S]*typed\.ts: TypeScript, which Node 20\.[\d.]+ cannot load without a build step/,
    );
  }, 120_000);

  it('a handler that imports a package nobody has fails the start naming the file and the package', async () => {
    const dir = handlersFolder();
    writeFileSync(join(dir, 'needs-more.mjs'), "import 'constructor';\nexport default { on: 40, handle() {} };\n");
    await expect(spawnRouter({ dataDir: join(root, 'data-missing'), env: { HANDLERS_DIR: dir } })).rejects.toThrow(
      /needs-more\.mjs: the module failed to load: Cannot find package 'constructor'/,
    );
  });
});

let pkgDir: string | undefined;

/** The router built as `npm run build` makes it, into a package folder of its own (once per file). */
function built(): string {
  if (pkgDir) return pkgDir;
  const pkg = join(root, 'installed', 'node_modules', 'hubex-router');
  mkdirSync(pkg, { recursive: true });
  execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(pkg, 'dist')],
    {
      cwd: REPO_ROOT,
      stdio: 'pipe',
    },
  );
  execFileSync(process.execPath, ['scripts/copy-assets.mjs', join(pkg, 'dist')], { cwd: REPO_ROOT, stdio: 'pipe' });
  cpSync(join(REPO_ROOT, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(pkg, 'node_modules'));
  pkgDir = pkg;
  return pkg;
}
