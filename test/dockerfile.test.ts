// The container image as the Dockerfile describes it: base images pinned by digest, on a
// supported LTS Node that better-sqlite3 supports, the application root's and read-only to the
// user that runs it (only /data is that user's), and every file the built router loads inside.
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  body: Instruction[];
}

/** Instructions with their continuation lines joined; comments and the syntax directive dropped. */
function instructions(dockerfile: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of dockerfile.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(pending + line) ?? [];
    out.push({ op: op.toUpperCase(), args: args.trim() });
    pending = '';
  }
  return out;
}

function stagesOf(dockerfile: string): Stage[] {
  const stages: Stage[] = [];
  for (const i of instructions(dockerfile)) {
    if (i.op === 'FROM') {
      const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      stages.push({ image: words[0] ?? '', name: words[2], body: [] });
    } else stages.at(-1)?.body.push(i);
  }
  return stages;
}

const stages = stagesOf(read('Dockerfile'));
const final = stages.at(-1)!;
const build = stages.find((s) => s.name === 'build');
/** FROM lines that name an image, not an earlier stage. */
const bases = stages.map((s) => s.image).filter((image) => !stages.some((s) => s.name === image));
const ops = (stage: Stage, ...names: string[]) => stage.body.filter((i) => names.includes(i.op));
/** A COPY's source paths (every word but the flags and the destination). */
const sources = (i: Instruction) =>
  i.args
    .split(/\s+/)
    .filter((w) => !w.startsWith('--'))
    .slice(0, -1);

it('pins every base image by a sha256 digest, the tag kept for the reader', () => {
  expect(bases.length).toBeGreaterThan(0);
  for (const image of bases) expect(image).toMatch(/^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/);
});

it('builds and runs on one supported LTS Node (even, 22 or later) that better-sqlite3 supports', () => {
  // The native addon compiled in the build stage must match the Node that loads it.
  expect(new Set(bases).size).toBe(1);
  const major = Number(/^node:(\d+)[.-]/.exec(bases[0] ?? '')?.[1]);
  expect(major).toBeGreaterThanOrEqual(22);
  expect(major % 2).toBe(0);
  // On Node 22 and later the router loads better-sqlite3 13 (src/store/sqlite/driver.ts): Node
  // 24.19 and later abort the process when a 12.x object is garbage-collected ("Assertion failed:
  // (env) != nullptr"). It is an optional dependency (it refuses Node 20), so the image must get it.
  const pkg = JSON.parse(read('package.json')) as { optionalDependencies?: Record<string, string> };
  expect(pkg.optionalDependencies?.['better-sqlite3-node22']).toMatch(/^npm:better-sqlite3@13\./);
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
  const locked = lock.packages['node_modules/better-sqlite3-node22'];
  expect(locked?.engines?.node).toBe('>=22');
  expect(major).toBeGreaterThanOrEqual(22);
  // And the build stage does not leave optional dependencies out.
  expect(build!.body.map((o) => o.args).join('\n')).not.toMatch(/--(omit|no)-optional|--omit=optional/);
});

it('runs as the non-root node user, which owns /data and nothing of the application', () => {
  const user = ops(final, 'USER').at(-1)?.args;
  expect(user).toBe('node');
  // COPY without --chown gives root:root with the modes the build stage left (it removes go-w).
  for (const copy of ops(final, 'COPY', 'ADD')) expect(copy.args).not.toMatch(/--(chown|chmod)\b/);
  const run = ops(final, 'RUN')
    .map((i) => i.args)
    .join(' && ');
  const given = [...run.matchAll(/\b(chown|chmod|chgrp)\s+(?:-\S+\s+)*\S+\s+([^&|;]+)/g)].flatMap((m) => m[2]!.trim().split(/\s+/));
  expect(given).toEqual(['/data']);
  expect(ops(final, 'VOLUME').map((i) => i.args)).toEqual(['["/data"]']);
  expect(
    ops(final, 'ENV')
      .map((i) => i.args)
      .join(' '),
  ).toMatch(/\bDATA_DIR=\/data\b/);
  expect(final.body.map((i) => i.op)).toEqual(expect.arrayContaining(['EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL']));
});

it('puts into the image what the built router loads, the shipped handlers where the loader looks', () => {
  expect(build).toBeDefined();
  // Every folder tsconfig.build.json compiles into dist/ reaches the build stage ...
  const compiled = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
  const copiedIn = ops(build!, 'COPY')
    .filter((i) => !i.args.includes('--from'))
    .flatMap(sources);
  for (const dir of compiled) expect(copiedIn).toContain(dir);
  // ... and the run stage takes dist/, the production node_modules and package.json from it.
  const taken = ops(final, 'COPY')
    .filter((i) => i.args.includes('--from=build'))
    .flatMap(sources);
  expect(taken.sort()).toEqual(['/app/dist', '/app/node_modules', '/app/package.json']);
  // The loader resolves its folder from dist/src/delivery/: that is dist/handlers, built from handlers/.
  const relative = /BUILTIN_HANDLERS_DIR = fileURLToPath\(new URL\('([^']+)', import\.meta\.url\)\)/.exec(
    read('src/delivery/loader.ts'),
  )?.[1];
  expect(relative).toBeDefined();
  const builtin = posix.join('dist/src/delivery', relative!);
  expect(builtin).toBe('dist/handlers/');
  expect(compiled).toContain('handlers');
  expect(ops(final, 'CMD').at(-1)?.args).toContain('"dist/src/main.js"');
  expect(existsSync(new URL('../src/main.ts', import.meta.url))).toBe(true);
});

/** A .dockerignore pattern as a RegExp over a context path (it also excludes what lies under a match). */
function ignorePattern(pattern: string): RegExp {
  const body = pattern
    .replace(/^\/|\/$/g, '')
    .split('**')
    .map((part) =>
      part
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]'),
    )
    .join('.*');
  return new RegExp(`^${body}(/|$)`);
}

it('keeps secrets out of the build context, and nothing the build stage copies', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'))
    .map(ignorePattern);
  expect(ignored.some((re) => re.test('.env.production'))).toBe(true);
  const copied = ops(build!, 'COPY')
    .filter((i) => !i.args.includes('--from'))
    .flatMap(sources);
  expect(copied).toContain('src');
  for (const path of copied)
    expect(
      ignored.filter((re) => re.test(path)),
      path,
    ).toEqual([]);
});
