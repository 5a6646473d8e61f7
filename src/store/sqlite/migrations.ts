// Versioned schema migrations, applied in order at open. PRAGMA user_version holds the version.
// Append new migrations; never edit one that has shipped.
import type { Database } from './driver.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events',
    // One B-tree index on a random key (id) per event: each one costs a page in the WAL.
    // The normalised event is not stored; it is rebuilt from `raw` when a handler runs.
    sql: `
      CREATE TABLE events (
        seq               INTEGER PRIMARY KEY,
        id                TEXT    NOT NULL UNIQUE,   -- Event.id; '<key>.<n>' for a repeat after the dedup window
        id_source         TEXT    NOT NULL CHECK (id_source IN ('payload', 'hash')),
        event_id          INTEGER,                   -- HubEx's numeric event id
        name              TEXT    NOT NULL,
        entity_type       TEXT,
        entity_id         TEXT,
        received_at       INTEGER NOT NULL,          -- ms since the epoch
        duplicates        INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at INTEGER,
        routed            INTEGER NOT NULL,          -- deliveries made at accept; 0 = unrouted, kept for audit
        raw               TEXT    NOT NULL           -- the JSON text as received
      );
      CREATE INDEX events_received ON events (received_at);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    version: 2,
    name: 'deliveries',
    sql: `
      CREATE TABLE deliveries (
        id               INTEGER PRIMARY KEY,
        event_seq        INTEGER NOT NULL,           -- events.seq
        handler          TEXT    NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'done', 'dead')),
        attempts         INTEGER NOT NULL DEFAULT 0, -- runs started since creation or the last replay
        replays          INTEGER NOT NULL DEFAULT 0,
        due_at           INTEGER,                    -- pending: when it may run; running: when its lease ends
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        last_error       TEXT,
        last_error_class TEXT,
        last_trace_id    TEXT,
        UNIQUE (event_seq, handler)
      );
      CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'running');
      CREATE INDEX deliveries_dead ON deliveries (updated_at) WHERE status = 'dead';
      CREATE TABLE delivery_attempts (
        id           INTEGER PRIMARY KEY,
        delivery_id  INTEGER NOT NULL,
        cycle        INTEGER NOT NULL,               -- deliveries.replays when it ran
        attempt      INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER NOT NULL,
        outcome      TEXT    NOT NULL CHECK (outcome IN ('done', 'skipped', 'retry', 'dead', 'released')),
        error        TEXT,
        error_class  TEXT,
        trace_id     TEXT
      );
      CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);
    `,
  },
  {
    version: 3,
    name: 'cheap counts for metrics',
    // Unrouted events and the age of the backlog are read at every metrics scrape: no table scans.
    sql: `
      CREATE INDEX events_unrouted ON events (seq) WHERE routed = 0;
      CREATE INDEX deliveries_backlog ON deliveries (created_at) WHERE status IN ('pending', 'running');
    `,
  },
  {
    version: 4,
    name: 'event ids indexed in bulk',
    // The unique index on events.id cost a random B-tree page in the WAL for every event: about a
    // third of an accept. Ids now go to event_ids in sorted slices of thousands (writer.ts,
    // indexIds); those accepted since the last slice are held in memory and, after a restart,
    // read back from the events above ids_indexed_through. The table is rebuilt without the
    // UNIQUE constraint (SQLite cannot drop one), with AUTOINCREMENT so that a seq is never
    // reused after a prune: the tail read at open relies on seqs only growing.
    sql: `
      CREATE TABLE event_ids (id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO event_ids (id, seq) SELECT id, seq FROM events ORDER BY id;
      CREATE TABLE events_v4 (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT    NOT NULL,          -- Event.id, unique (event_ids); '<key>.<n>' for a repeat after the dedup window
        id_source         TEXT    NOT NULL CHECK (id_source IN ('payload', 'hash')),
        event_id          INTEGER,
        name              TEXT    NOT NULL,
        entity_type       TEXT,
        entity_id         TEXT,
        received_at       INTEGER NOT NULL,
        duplicates        INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at INTEGER,
        routed            INTEGER NOT NULL,
        raw               TEXT    NOT NULL
      );
      INSERT INTO events_v4 (seq, id, id_source, event_id, name, entity_type, entity_id, received_at,
                             duplicates, last_duplicate_at, routed, raw)
        SELECT seq, id, id_source, event_id, name, entity_type, entity_id, received_at,
               duplicates, last_duplicate_at, routed, raw FROM events ORDER BY seq;
      DROP TABLE events;
      ALTER TABLE events_v4 RENAME TO events;
      CREATE INDEX events_received ON events (received_at);
      CREATE INDEX events_unrouted ON events (seq) WHERE routed = 0;
      INSERT INTO meta (key, value) SELECT 'ids_indexed_through', COALESCE(MAX(seq), 0) FROM events WHERE true
        ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    `,
  },
  {
    version: 5,
    name: 'the tenant of each event',
    // Every event carries the HubEx account it came from; the one there was until now is 'default'.
    // Adding a column with a constant default rewrites no row.
    sql: `ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';`,
  },
  {
    version: 6,
    name: 'ordered and debounced deliveries',
    // A handler's orderBy or debounce gives its deliveries a flow and a key (scoped by tenant).
    // Ordered: of one handler and key, one delivery at a time is due or running (the head); the
    // others wait pending with no due time (parked) until the head is done or dead, then the
    // oldest goes next. Debounced: a new event of the key finishes the one still pending as
    // collapsed into the new delivery, which counts it. The index answers each of those questions
    // with one seek (rows of one key by status, then due time: parked ones first, by id).
    sql: `
      ALTER TABLE deliveries ADD COLUMN flow TEXT CHECK (flow IN ('order', 'debounce'));
      ALTER TABLE deliveries ADD COLUMN flow_key TEXT;
      ALTER TABLE deliveries ADD COLUMN collapsed INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE deliveries ADD COLUMN collapsed_into INTEGER;
      ALTER TABLE deliveries ADD COLUMN burst_at INTEGER;
      CREATE INDEX deliveries_flow ON deliveries (handler, flow_key, status, due_at, id)
        WHERE flow_key IS NOT NULL AND status IN ('pending', 'running');
      CREATE INDEX deliveries_collapsed ON deliveries (collapsed_into) WHERE collapsed_into IS NOT NULL;
    `,
  },
  {
    version: 7,
    name: "each task's pushed events, for reconciliation",
    // The reconciler asks when each of a page of tasks last had a pushed event: through this index
    // one seek a task, not a scan of every event since its cursor (after an outage, days of them).
    // Only pushed task events are in it: asset events, the most of a bulk import, cost nothing more.
    sql: `
      CREATE INDEX events_task_pushes ON events (tenant, entity_id, received_at)
        WHERE entity_type = 'task' AND name <> 'task.modified';
    `,
  },
];

/** Brings the database to the newest version, each step in its own transaction. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  let current = db.pragma('user_version', { simple: true }) as number;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new Error(`The database is at schema version ${current}, newer than this router knows (${newest}); run a newer hubex-router.`);
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
