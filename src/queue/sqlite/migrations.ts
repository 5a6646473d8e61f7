// Versioned schema migrations, applied in order at open. PRAGMA user_version holds the version.
// Append new migrations; never edit one that has shipped.
import type Database from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events',
    sql: `
      CREATE TABLE events (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT    NOT NULL UNIQUE,   -- Event.id
        dedup_key         TEXT    NOT NULL,          -- payload unique id or content hash
        id_source         TEXT    NOT NULL CHECK (id_source IN ('payload', 'hash')),
        event_id          INTEGER,                   -- HubEx's numeric event id
        name              TEXT    NOT NULL,
        entity_type       TEXT,
        entity_id         TEXT,
        received_at       INTEGER NOT NULL,          -- ms since the epoch
        duplicates        INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at INTEGER,
        event             TEXT    NOT NULL,          -- the normalised event as JSON, without raw
        raw               TEXT    NOT NULL           -- the JSON text as received
      );
      CREATE INDEX events_dedup ON events (dedup_key, seq);
      CREATE INDEX events_received ON events (received_at);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
];

/** Brings the database to the newest version, each step in its own transaction. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  let current = db.pragma('user_version', { simple: true }) as number;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new Error(
      `The database is at schema version ${current}, newer than this router knows (${newest}); run a newer hubex-router.`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
    current = m.version;
  }
  return current;
}
