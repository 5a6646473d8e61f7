// The SQLite driver: better-sqlite3, the release line that is safe on the Node.js running.
// - Node 22 and later: better-sqlite3 13 (the optional dependency `better-sqlite3-node22`). Node
//   24.19 aborts the process when a 12.x statement is garbage-collected after its thread's
//   environment is gone ("Assertion failed: (env) != nullptr"), which our store thread's exit does.
// - Node 20: better-sqlite3 12 (13 needs Node 22 and crashes on 20).
// Both lines have the same API; the types are 12's.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

export type Database = BetterSqlite3.Database;

function load(): { readonly Database: typeof BetterSqlite3; readonly package: string } {
  if (NODE_MAJOR >= 22) {
    try {
      return { Database: require('better-sqlite3-node22') as typeof BetterSqlite3, package: 'better-sqlite3-node22' };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      // Not installed (npm install --omit=optional): 12 works on 22, and on 24 until a statement's
      // finaliser meets a gone environment.
    }
  }
  return { Database: require('better-sqlite3') as typeof BetterSqlite3, package: 'better-sqlite3' };
}

const loaded = load();

/** The better-sqlite3 Database class for this Node.js. */
export const Database: typeof BetterSqlite3 = loaded.Database;

/** Which package was loaded, and its version, for `doctor` and the store's start line. */
export const DRIVER: string = `${loaded.package}@${(require(`${loaded.package}/package.json`) as { version: string }).version}`;
