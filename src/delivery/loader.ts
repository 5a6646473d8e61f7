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

function isModule(file: string): boolean {
  const name = basename(file);
  if (name.startsWith('.') || name.startsWith('_') || /\.(test|spec)\.[cm]?[jt]s$/.test(name) || name.endsWith('.d.ts')) {
    return false;
  }
  const ext = extname(name);
  return ext === '.js' || ext === '.mjs' || (LOADS_TYPESCRIPT && (ext === '.ts' || ext === '.mts'));
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
    const files = readdirSync(dir)
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

/** Checks a module's default export and gives it its file name when it has no name. */
export function checkHandler(value: unknown, file: string): Handler {
  const wrong = (problem: string) =>
    new HandlerLoadError(file, `${problem} (expected: export default defineHandler({ on: ['task.created'], async handle(ctx) { ... } })).`);
  if (value === undefined) throw wrong('the module has no default export');
  if (typeof value !== 'object' || value === null) throw wrong(`the default export is ${typeof value}, not a handler`);
  const h = value as Record<string, unknown>;
  const name = h.name ?? basename(file).replace(/\.[cm]?[jt]s$/, '');
  if (typeof name !== 'string' || !/^[A-Za-z0-9][\w.-]{0,99}$/.test(name)) {
    throw wrong('name must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  const unknown = Object.keys(h).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw wrong(`a handler has no field "${unknown.slice(0, 100)}" (it has ${[...FIELDS].join(', ')})`);
  if (typeof h.handle !== 'function') throw wrong('handle is not a function');
  if (h.where !== undefined && typeof h.where !== 'function') throw wrong('where is not a function');
  if (h.onDead !== undefined && typeof h.onDead !== 'function') throw wrong('onDead is not a function');
  if (h.enabled !== undefined && typeof h.enabled !== 'boolean') throw wrong('enabled is not true or false');
  const on = Array.isArray(h.on) ? (h.on as unknown[]) : [h.on];
  if (on.length === 0 || on.length > 1000 || on.some((s) => !isSelector(s))) {
    throw wrong("on must be an event name ('asset.created'), a numeric event id (40), '*', or a list of them");
  }
  const problem = policyProblem(h);
  if (problem) throw wrong(problem);
  const requires = requiredId(on as EventSelector[]);
  return Object.freeze({ ...h, name, on: on as EventSelector[], ...(requires ? { requires } : {}) }) as unknown as Handler;
}

const LIMITS = {
  timeoutMs: [10, 24 * 3600 * 1000],
  maxAttempts: [1, 1000],
} as const;

/** Every field a handler may have: another is a typo (`maxAttempt`) that would be ignored silently. */
const FIELDS = new Set(['name', 'on', 'where', 'handle', 'onDead', 'enabled', 'timeoutMs', 'maxAttempts', 'retry']);

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
  const { baseMs, maxMs, ...rest } = h.retry as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `retry has no field ${Object.keys(rest)[0]} (it takes baseMs and maxMs)`;
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
 * The id field the handler's types promise (`on: 'task.created'` types event.taskID as a number):
 * when every subscription is a name of one typed entity. The runner checks it before handle().
 */
function requiredId(on: readonly EventSelector[]): Handler['requires'] {
  const entities = new Set(on.map((s) => (typeof s === 'string' ? s.split('.')[0] : undefined)));
  if (entities.size !== 1) return undefined;
  const [entity] = entities;
  return entity !== undefined && Object.hasOwn(TYPED_ENTITIES, entity) && on.every((s) => s !== '*')
    ? TYPED_ENTITIES[entity as keyof typeof TYPED_ENTITIES]
    : undefined;
}

const isSelector = (s: unknown): boolean =>
  (typeof s === 'string' && s.trim() !== '') || (typeof s === 'number' && Number.isSafeInteger(s) && s > 0);
