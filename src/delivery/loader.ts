// The handler loader: every module in the shipped handlers/ folder and in HANDLERS_DIR whose
// default export is a handler. A module of the wrong shape, or two handlers with one name, stop
// the start with a message that names the file: a half-loaded set of handlers would lose work.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HandlerLoadError } from '../errors.js';
import type { EventSelector, Handler } from './define-handler.js';

export { HandlerLoadError };

/** The handlers/ folder shipped with the router: beside src/ in the sources, beside dist/src/ when built. */
export const BUILTIN_HANDLERS_DIR = fileURLToPath(new URL('../../handlers/', import.meta.url));

/** Under tsx or vitest the shipped handlers are TypeScript; a built router loads JavaScript only. */
const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');

function isModule(file: string): boolean {
  const name = basename(file);
  if (name.startsWith('.') || name.startsWith('_') || /\.(test|spec)\.[cm]?[jt]s$/.test(name) || name.endsWith('.d.ts')) {
    return false;
  }
  const ext = extname(name);
  return ext === '.js' || ext === '.mjs' || (RUNNING_FROM_SOURCE && ext === '.ts');
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
  if (typeof h.handle !== 'function') throw wrong('handle is not a function');
  if (h.where !== undefined && typeof h.where !== 'function') throw wrong('where is not a function');
  if (h.enabled !== undefined && typeof h.enabled !== 'boolean') throw wrong('enabled is not true or false');
  const on = Array.isArray(h.on) ? (h.on as unknown[]) : [h.on];
  if (on.length === 0 || on.some((s) => !isSelector(s))) {
    throw wrong("on must be an event name ('asset.created'), a numeric event id (40), '*', or a list of them");
  }
  return Object.freeze({ ...h, name, on: on as EventSelector[] }) as unknown as Handler;
}

const isSelector = (s: unknown): boolean =>
  (typeof s === 'string' && s.trim() !== '') || (typeof s === 'number' && Number.isSafeInteger(s) && s > 0);
