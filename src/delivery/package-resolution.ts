// A handler in HANDLERS_DIR lives outside this package, where Node cannot find 'hubex-router' by
// name (no node_modules of the handler's folder holds it). A resolve hook maps the package's name
// and its subpaths to the copy that is running, wherever it runs: a clone started with `npm
// start`, an installed package, the container. So a handler gets the very defineHandler,
// PermanentError and client types the router checks against, and a handlers folder's own
// node_modules still serve every other import. A copy of hubex-router installed in the handlers
// folder (for its editor or its tests) is not the one used at run time: the router's is.
import module from 'node:module';

/** The package's public entry points, by import specifier, as files of this build. */
const ENTRIES: Readonly<Record<string, string>> = {
  'hubex-router': 'index',
  'hubex-router/testing': 'testing/index',
  'hubex-router/hubex': 'hubex/index',
};

// The hook runs on Node's loader thread, so it is plain JavaScript given as a data: URL.
const HOOKS = `data:text/javascript,${encodeURIComponent(
  [
    'let targets = {};',
    'export function initialize(data) { targets = data.targets; }',
    'export async function resolve(specifier, context, next) {',
    '  const url = Object.hasOwn(targets, specifier) ? targets[specifier] : undefined;',
    // On through the other hooks (tsx's, running from the sources, must see the .ts file).
    '  return next(url ?? specifier, context);',
    '}',
  ].join('\n'),
)}`;

let registered = false;

/** The files the package's entry points map to in this build (.ts when running from source). */
export function packageEntries(): Record<string, string> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return Object.fromEntries(Object.entries(ENTRIES).map(([spec, file]) => [spec, new URL(`../${file}${ext}`, import.meta.url).href]));
}

type ResolveHook = (specifier: string, context: unknown, next: (specifier: string, context?: unknown) => unknown) => unknown;
type RegisterHooks = (hooks: { resolve: ResolveHook }) => unknown;

/**
 * Makes `import ... from 'hubex-router'` (and `require`) work in modules loaded from now on. Once
 * per process. Where Node has synchronous hooks (module.registerHooks, 22.15 and later) they are
 * used: they run in this thread and cover require too, and module.register is on its way out;
 * Node 20 gets module.register, which covers import only (handlers are ES modules).
 */
export function resolvePackageForHandlers(): void {
  if (registered) return;
  registered = true;
  const targets = packageEntries();
  const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  // Under tsx (the sources) its own asynchronous hooks must see the .ts file: keep to register there.
  if (typeof registerHooks === 'function' && !import.meta.url.endsWith('.ts')) {
    registerHooks({
      resolve: (specifier, context, next) => next(Object.hasOwn(targets, specifier) ? targets[specifier]! : specifier, context),
    });
    return;
  }
  module.register(HOOKS, { data: { targets } });
}
