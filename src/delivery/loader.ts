// The handler loader: every module in the shipped handlers/ folder and in HANDLERS_DIR whose
// default export is a handler. A module of the wrong shape, or two handlers with one name, stop
// the start with a message that names the file: a half-loaded set of handlers would lose work.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HandlerLoadError } from '../errors.js';
import { type EventSelector, type Handler, TYPED_ENTITIES } from './define-handler.js';
import { resolvePackageForHandlers } from './package-resolution.js';

export { HandlerLoadError };

/** The handlers/ folder shipped with the router: beside src/ in the sources, beside dist/src/ when built. */
export const BUILTIN_HANDLERS_DIR = fileURLToPath(new URL('../../handlers/', import.meta.url));

/**
 * TypeScript modules load where no build step is needed: under tsx or vitest (the sources), and on
 * a Node that strips types itself (22.18 and later, 24). Elsewhere a .ts file is left out, and said so.
 */
const LOADS_TYPESCRIPT = import.meta.url.endsWith('.ts') || Boolean((process.features as { typescript?: string | false }).typescript);

/** Not skipped by its name: no leading . or _, not a test, not a declaration file. */
function isCandidate(file: string): boolean {
  const name = basename(file);
  return !(name.startsWith('.') || name.startsWith('_') || /\.(test|spec)\.[cm]?[jt]s$/.test(name) || /\.d\.[cm]?ts$/.test(name));
}

function isModule(file: string): boolean {
  if (!isCandidate(file)) return false;
  const name = basename(file);
  const ext = extname(name);
  return ext === '.js' || ext === '.mjs' || (LOADS_TYPESCRIPT && (ext === '.ts' || ext === '.mts'));
}

/** The folders the router loads handlers from: the shipped handlers/, then HANDLERS_DIR (which must exist) when set. */
export function handlerFolders(handlersDir: string | undefined): { dir: string; required?: boolean }[] {
  return [{ dir: BUILTIN_HANDLERS_DIR }, ...(handlersDir ? [{ dir: handlersDir, required: true }] : [])];
}

/** Loads the handlers of each folder, in file-name order; missing folders are skipped, except `required` ones. */
export async function loadHandlers(dirs: readonly { dir: string; required?: boolean }[]): Promise<Handler[]> {
  const handlers: Handler[] = [];
  const fileOf = new Map<string, string>();
  for (const { dir, required } of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      if (required) throw new HandlerLoadError(dir, 'HANDLERS_DIR is not a folder (check the path).');
      continue;
    }
    // A module outside this package imports it by name: 'hubex-router' must resolve to this copy.
    resolvePackageForHandlers();
    const names = readdirSync(dir);
    // A TypeScript handler this Node cannot load would be left out silently: a user's handler that never runs.
    const typescript = LOADS_TYPESCRIPT ? undefined : names.filter(isCandidate).find((f) => /\.m?ts$/.test(f));
    if (typescript !== undefined) {
      throw new HandlerLoadError(
        join(dir, typescript),
        `TypeScript, which Node ${process.versions.node} cannot load without a build step: compile it to .js or .mjs, or run Node 22.18 or later (it strips types itself).`,
      );
    }
    const files = names
      .filter(isModule)
      .sort()
      .map((f) => join(dir, f));
    for (const file of files) {
      const handler = await loadOne(file);
      const other = fileOf.get(handler.name);
      if (other !== undefined) {
        throw new HandlerLoadError(file, `a handler named "${handler.name}" is already loaded from ${other}; names must be unique.`);
      }
      fileOf.set(handler.name, file);
      handlers.push(handler);
    }
  }
  return handlers;
}

async function loadOne(file: string): Promise<Handler> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new HandlerLoadError(file, `the module failed to load: ${(err as Error).message}`);
  }
  return checkHandler(mod.default, file);
}

/**
 * Checks a module's default export and gives it its file name when it has no name. Its fields are
 * read once, into a frozen plain object (a class instance's methods included; a getter cannot
 * answer one value to the check and another to the run), and anything that throws while being
 * read is a load error that names the file.
 */
export function checkHandler(value: unknown, file: string): Handler {
  const wrong = (problem: string) =>
    new HandlerLoadError(file, `${problem} (expected: export default defineHandler({ on: ['task.created'], async handle(ctx) { ... } })).`);
  if (value === undefined) throw wrong('the module has no default export');
  if (typeof value !== 'object' || value === null) throw wrong(`the default export is ${typeof value}, not a handler`);
  let h: Record<string, unknown>;
  try {
    const unknown = Object.keys(value).find((k) => !FIELDS.has(k));
    if (unknown !== undefined) throw wrong(`a handler has no field "${unknown.slice(0, 100)}" (it has ${[...FIELDS].join(', ')})`);
    h = {};
    for (const f of FIELDS) {
      const v = (value as Record<string, unknown>)[f];
      if (v !== undefined) h[f] = v;
    }
    if (Array.isArray(h.on)) h.on = [...(h.on as unknown[])];
    if (typeof h.retry === 'object' && h.retry !== null) {
      const r = h.retry as Record<string, unknown>;
      const extra = Object.keys(r).find((k) => k !== 'baseMs' && k !== 'maxMs');
      if (extra !== undefined) throw wrong(`retry has no field ${extra.slice(0, 100)} (it takes baseMs and maxMs)`);
      h.retry = Object.freeze({
        ...(r.baseMs === undefined ? {} : { baseMs: r.baseMs }),
        ...(r.maxMs === undefined ? {} : { maxMs: r.maxMs }),
      });
    }
    if (typeof h.debounce === 'object' && h.debounce !== null) {
      const d = h.debounce as Record<string, unknown>;
      const extra = Object.keys(d).find((k) => k !== 'key' && k !== 'periodMs' && k !== 'maxWaitMs');
      if (extra !== undefined) throw wrong(`debounce has no field ${extra.slice(0, 100)} (it takes key, periodMs and maxWaitMs)`);
      h.debounce = { key: d.key, periodMs: d.periodMs, maxWaitMs: d.maxWaitMs };
    }
  } catch (err) {
    if (err instanceof HandlerLoadError) throw err;
    throw new HandlerLoadError(
      file,
      `the handler cannot be read: ${err instanceof Error ? err.message : 'it threw a value that is not an Error'}`,
    );
  }
  const name = h.name ?? basename(file).replace(/\.[cm]?[jt]s$/, '');
  if (typeof name !== 'string' || !/^[A-Za-z0-9][\w.-]{0,99}$/.test(name)) {
    throw wrong('name must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  if (typeof h.handle !== 'function') throw wrong('handle is not a function');
  if (h.where !== undefined && typeof h.where !== 'function') throw wrong('where is not a function');
  if (h.onDead !== undefined && typeof h.onDead !== 'function') throw wrong('onDead is not a function');
  if (h.orderBy !== undefined && typeof h.orderBy !== 'function') throw wrong('orderBy is not a function (event) => key');
  if (h.enabled !== undefined && typeof h.enabled !== 'boolean') throw wrong('enabled is not true or false');
  const on = Array.isArray(h.on) ? (h.on as unknown[]) : [h.on];
  if (on.length === 0 || on.length > 1000 || on.some((s) => !isSelector(s))) {
    throw wrong("on must be an event name ('asset.created'), a numeric event id (40), '*', or a list of them");
  }
  const problem = policyProblem(h) ?? debounceProblem(h);
  if (problem) throw wrong(problem);
  if (h.debounce) {
    const d = h.debounce as { key: unknown; periodMs: number; maxWaitMs?: number };
    h.debounce = Object.freeze({ ...d, maxWaitMs: d.maxWaitMs ?? Math.min(10 * d.periodMs, MAX_DEBOUNCE_MS) });
  }
  const typed = isTyped(on as EventSelector[]);
  return Object.freeze({ ...h, name, on: Object.freeze(on as EventSelector[]), ...(typed ? { typed } : {}) }) as unknown as Handler;
}

const LIMITS = {
  timeoutMs: [10, 24 * 3600 * 1000],
  maxAttempts: [1, 1000],
  concurrency: [1, 1000],
} as const;

/** Every field a handler may have: another is a typo (`maxAttempt`) that would be ignored silently. */
const FIELDS = new Set([
  'name',
  'on',
  'where',
  'handle',
  'onDead',
  'enabled',
  'timeoutMs',
  'maxAttempts',
  'retry',
  'concurrency',
  'orderBy',
  'debounce',
]);

/** The longest a debounced run waits: a day. */
const MAX_DEBOUNCE_MS = 24 * 3600 * 1000;

/** What is wrong with a handler's debounce (and its mix with orderBy), or undefined. */
function debounceProblem(h: Record<string, unknown>): string | undefined {
  if (h.debounce === undefined) return undefined;
  if (typeof h.debounce !== 'object' || h.debounce === null) return 'debounce must be { key: (event) => key, periodMs }';
  if (h.orderBy !== undefined) {
    return 'a handler takes orderBy or debounce, not both (a debounced key runs once per burst; give the other need a handler of its own)';
  }
  const { key, periodMs, maxWaitMs } = h.debounce as Record<string, unknown>;
  if (typeof key !== 'function') return 'debounce.key must be a function (event) => key';
  const ms = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_DEBOUNCE_MS;
  if (!ms(periodMs)) return 'debounce.periodMs must be a whole number of ms from 1 to a day';
  if (maxWaitMs !== undefined && !(ms(maxWaitMs) && (maxWaitMs as number) >= (periodMs as number))) {
    return 'debounce.maxWaitMs must be a whole number of ms from periodMs to a day';
  }
  return undefined;
}

/** What is wrong with a handler's policy, or undefined. Same bounds as the router's own variables. */
function policyProblem(h: Record<string, unknown>): string | undefined {
  for (const [field, [min, max]] of Object.entries(LIMITS)) {
    const v = h[field];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max)) {
      return `${field} must be a whole number from ${min} to ${max}`;
    }
  }
  if (h.retry === undefined) return undefined;
  if (typeof h.retry !== 'object' || h.retry === null) return 'retry must be { baseMs, maxMs }';
  const { baseMs, maxMs } = h.retry as Record<string, unknown>;
  for (const [field, v] of [
    ['baseMs', baseMs],
    ['maxMs', maxMs],
  ] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 30 * 24 * 3600 * 1000)) {
      return `retry.${field} must be a whole number of ms from 1 to 30 days`;
    }
  }
  if (typeof baseMs === 'number' && typeof maxMs === 'number' && baseMs > maxMs) return 'retry.baseMs must not be over retry.maxMs';
  return undefined;
}

/**
 * Whether the handler's types promise each event's entity id: every subscription is a name of a
 * typed entity (`task.created`: event.taskID is a number). The runner checks each event.
 */
function isTyped(on: readonly EventSelector[]): boolean {
  return on.every((s) => typeof s === 'string' && Object.hasOwn(TYPED_ENTITIES, s.split('.')[0]!));
}

const isSelector = (s: unknown): boolean =>
  (typeof s === 'string' && s.trim() !== '') || (typeof s === 'number' && Number.isSafeInteger(s) && s > 0);
