// Every SQL statement of the SQLite store (the schema is in ./migrations.ts), and how its rows
// read as the contract's records.
import type { AttemptError, DeliveryRecord, DeliveryStatus, EventRecord, StoredEvent } from '../contract.js';
import type { Database } from './driver.js';

/** What the store uses of a prepared statement, for rows of type R. */
export interface Stmt<R> {
  get(...params: unknown[]): R | undefined;
  all(...params: unknown[]): R[];
  iterate(...params: unknown[]): IterableIterator<R>;
  run(...params: unknown[]): { readonly changes: number; readonly lastInsertRowid: number | bigint };
}

/** What the dedup needs of a stored id; none of it changes once stored. */
export interface KnownId {
  readonly seq: number;
  readonly id_source: string;
  readonly received_at: number;
}

export type IdRow = KnownId & { readonly id: string };

export type Statements = ReturnType<typeof prepare>;

export interface DeliveryRow {
  id: number;
  event_seq: number;
  event_id: string;
  event_name: string;
  handler: string;
  status: DeliveryStatus;
  attempts: number;
  replays: number;
  due_at: number | null;
  created_at: number;
  updated_at: number;
  last_error: string | null;
  last_error_class: string | null;
  last_trace_id: string | null;
  collapsed_into: number | null;
}

interface EventRow {
  seq: number;
  id: string;
  tenant: string;
  name: string;
  received_at: number;
  raw: string;
}

interface EventListRow {
  seq: number;
  id: string;
  tenant: string;
  name: string;
  event_id: number | null;
  entity_type: string | null;
  entity_id: string | null;
  received_at: number;
  duplicates: number;
  routed: number;
}

export const toEventRecord = (r: EventListRow): EventRecord => ({
  seq: r.seq,
  id: r.id,
  tenant: r.tenant,
  name: r.name,
  eventID: r.event_id,
  entity: r.entity_type === null || r.entity_id === null ? null : { type: r.entity_type, id: r.entity_id },
  receivedAt: r.received_at,
  duplicates: r.duplicates,
  routed: r.routed,
});

const EVENT_COLUMNS = 'seq, id, tenant, name, event_id, entity_type, entity_id, received_at, duplicates, routed';

export const toStoredEvent = (r: EventRow): StoredEvent => ({
  seq: r.seq,
  id: r.id,
  tenant: r.tenant,
  name: r.name,
  receivedAt: r.received_at,
  raw: r.raw,
});

export function errorOf(message: string | null, errorClass: string | null, traceId: string | null): AttemptError | null {
  if (message === null) return null;
  return { message, errorClass: errorClass ?? 'Error', ...(traceId ? { traceId } : {}) };
}

export const toRecord = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  eventId: r.event_id,
  eventName: r.event_name,
  handler: r.handler,
  status: r.status,
  attempts: r.attempts,
  replays: r.replays,
  dueAt: r.due_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  lastError: errorOf(r.last_error, r.last_error_class, r.last_trace_id),
  ...(r.collapsed_into === null ? {} : { collapsedInto: r.collapsed_into }),
});

const DELIVERY_COLUMNS = `d.id, d.event_seq, e.id AS event_id, e.name AS event_name, d.handler, d.status, d.attempts,
  d.replays, d.due_at, d.created_at, d.updated_at, d.last_error, d.last_error_class, d.last_trace_id, d.collapsed_into`;

/** The rows of one handler's key that are pending or running: what the partial index deliveries_flow holds. */
const OF_KEY = `handler = @handler AND flow_key = @key AND flow_key IS NOT NULL AND status IN ('pending', 'running')`;
/**
 * The ordered ones among them. A debounced row of the same handler and key (the handler changed
 * from debounce to orderBy, or back, across a restart) neither holds the line nor is promoted:
 * only an ordered one's settle promotes, so counting a debounced one would park the key for ever.
 */
const ORDERED_OF_KEY = `${OF_KEY} AND flow = 'order'`;

/** Every statement of the store, prepared once per connection. */
export function prepare(db: Database) {
  const p = <T = unknown>(sql: string) => db.prepare(sql) as unknown as Stmt<T>;
  return {
    byIndexedId: p<KnownId>('SELECT e.seq, e.id_source, e.received_at FROM event_ids k JOIN events e ON e.seq = k.seq WHERE k.id = ?'),
    // Repeats of a content hash are '<key>.2', '<key>.3', ...: a range of event_ids' key.
    repeatsIndexed: p<IdRow>(`SELECT k.id, e.seq, e.id_source, e.received_at FROM event_ids k JOIN events e ON e.seq = k.seq
                               WHERE k.id > ? AND k.id < ?`),
    idsAbove: p<IdRow>('SELECT seq, id, id_source, received_at FROM events WHERE seq > ? ORDER BY seq'),
    maxSeq: p<{ seq: number }>('SELECT max(seq) AS seq FROM events'),
    getMeta: p<{ value: string }>('SELECT value FROM meta WHERE key = ?'),
    // INSERT OR REPLACE: a merge cut short by a crash is run again over the same ids.
    indexId: p('INSERT OR REPLACE INTO event_ids (id, seq) VALUES (?, ?)'),
    setIndexedThrough: p(`INSERT INTO meta (key, value) VALUES ('ids_indexed_through', ?)
                          ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))`),
    insert: p(`INSERT INTO events (id, tenant, id_source, event_id, name, entity_type, entity_id, received_at, routed, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    duplicate: p('UPDATE events SET duplicates = duplicates + 1, last_duplicate_at = ? WHERE seq = ?'),
    fanOut: p(`INSERT INTO deliveries (event_seq, handler, status, due_at, created_at, updated_at)
               VALUES (?, ?, 'pending', ?, ?, ?)`),
    fanOutFlow: p(`INSERT INTO deliveries (event_seq, handler, status, due_at, created_at, updated_at, flow, flow_key, collapsed, burst_at)
                   VALUES (@seq, @handler, 'pending', @dueAt, @now, @now, @flow, @key, @collapsed, @burstAt)`),
    /** Whether a key has a delivery pending or running (a new ordered one then waits its turn). */
    flowBusy: p<{ one: number }>(`SELECT 1 AS one FROM deliveries WHERE ${ORDERED_OF_KEY} LIMIT 1`),
    /** A debounced key's deliveries still waiting to run (at most one, but any left are collapsed too). */
    debounceWaiting: p<{ id: number; collapsed: number; burst_at: number | null; created_at: number }>(
      `SELECT id, collapsed, burst_at, created_at FROM deliveries WHERE ${OF_KEY} AND status = 'pending' AND flow = 'debounce' AND replays = 0`,
    ),
    collapse: p(`UPDATE deliveries SET status = 'done', due_at = NULL, updated_at = @now, collapsed_into = @into
                 WHERE id = @id AND status = 'pending'`),
    /** Those collapsed into a delivery that is collapsed in turn point at the one that runs. */
    recollapse: p(`UPDATE deliveries SET collapsed_into = @into WHERE collapsed_into = @id`),
    /**
     * The next of an ordered key becomes due: the oldest parked one, when none of the key is
     * running or due (one seek each, by the index's status and due time).
     */
    promote: p(`UPDATE deliveries SET due_at = @now, updated_at = @now
                WHERE id = (SELECT min(id) FROM deliveries WHERE ${ORDERED_OF_KEY} AND status = 'pending' AND due_at IS NULL)
                  AND NOT EXISTS (SELECT 1 FROM deliveries WHERE ${ORDERED_OF_KEY} AND status = 'running')
                  AND NOT EXISTS (SELECT 1 FROM deliveries WHERE ${ORDERED_OF_KEY} AND status = 'pending' AND due_at IS NOT NULL)`),
    /** Replayed ordered deliveries wait their turn like new ones: parked, then the key's next promoted. */
    park: p<{ handler: string; flow_key: string }>(`UPDATE deliveries SET due_at = NULL
                WHERE id IN (SELECT value FROM json_each(?)) AND flow = 'order' AND status = 'pending'
                RETURNING handler, flow_key`),
    setMeta: p(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
    deleteMeta: p('DELETE FROM meta WHERE key = ? AND value = ?'),
    /** The latest pushed event (not one the router made) about each of these tasks, received since a moment (events_task_pushes). */
    lastPushedTasks: p<{ id: string; at: number }>(`
      SELECT entity_id AS id, max(received_at) AS at FROM events INDEXED BY events_task_pushes
      WHERE entity_type = 'task' AND name <> 'task.modified' AND tenant = @tenant
        AND entity_id IN (SELECT value FROM json_each(@ids)) AND received_at >= @since
      GROUP BY entity_id`),
    probe: p(`INSERT INTO meta (key, value) VALUES ('last_write_probe', ?)
              ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
    claimable: p<{ id: number; status: DeliveryStatus }>(`
      SELECT id, status FROM deliveries
      WHERE status IN ('pending', 'running') AND due_at <= ?
        AND id NOT IN (SELECT value FROM json_each(?))
        AND handler NOT IN (SELECT value FROM json_each(?))
      ORDER BY due_at, id LIMIT ?`),
    claim: p<{ id: number; event_seq: number; handler: string; attempts: number; replays: number; collapsed: number }>(`
      UPDATE deliveries SET status = 'running', attempts = attempts + 1, due_at = ?, updated_at = ?
      WHERE id IN (SELECT value FROM json_each(?))
      RETURNING id, event_seq, handler, attempts, replays, collapsed`),
    nextDue: p<{ due_at: number }>(`
      SELECT due_at FROM deliveries
      WHERE status IN ('pending', 'running') AND due_at IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?))
        AND handler NOT IN (SELECT value FROM json_each(?))
      ORDER BY due_at LIMIT 1`),
    eventBySeq: p<EventRow>('SELECT seq, id, tenant, name, received_at, raw FROM events WHERE seq = ?'),
    attempt: p(`INSERT INTO delivery_attempts
                (delivery_id, cycle, attempt, started_at, finished_at, outcome, error, error_class, trace_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    finish: p<{
      handler: string;
      flow: string | null;
      flow_key: string | null;
    }>(`UPDATE deliveries SET status = ?, due_at = NULL, updated_at = ?,
                 last_error = ?, last_error_class = ?, last_trace_id = ?
               WHERE id = ? AND status = 'running' AND attempts = ? AND replays = ?
               RETURNING handler, flow, flow_key`),
    retry: p(`UPDATE deliveries SET status = 'pending', due_at = ?, updated_at = ?,
                last_error = ?, last_error_class = ?, last_trace_id = ?
              WHERE id = ? AND status = 'running' AND attempts = ? AND replays = ?`),
    release: p(`UPDATE deliveries SET status = 'pending', due_at = ?, updated_at = ?, attempts = attempts - 1
                WHERE id = ? AND status = 'running' AND attempts = ? AND replays = ?`),
    unclaim: p(`UPDATE deliveries SET status = 'pending', due_at = ?, updated_at = ?, attempts = attempts - 1
                WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))`),
    extend: p(`UPDATE deliveries SET due_at = ?, updated_at = ?
               WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))`),
    replayIds: p<{ id: number }>(`
      UPDATE deliveries SET status = 'pending', attempts = 0, replays = replays + 1, due_at = ?, updated_at = ?, collapsed_into = NULL
      WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('dead', 'done')
      RETURNING id`),
    replayDead: p<{ id: number }>(`
      UPDATE deliveries SET status = 'pending', attempts = 0, replays = replays + 1, due_at = @now, updated_at = @now, collapsed_into = NULL
      WHERE status = 'dead' AND (@handler IS NULL OR handler = @handler)
        AND (@eventName IS NULL OR event_seq IN (SELECT seq FROM events WHERE name = @eventName))
      RETURNING id`),
    prunable: p<{ seq: number; id: string }>(`
      SELECT e.seq, e.id FROM events e
      WHERE e.received_at < ?
        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status <> 'done')
      ORDER BY e.received_at LIMIT ?`),
    pruneAttempts: p(`DELETE FROM delivery_attempts WHERE delivery_id IN
                      (SELECT id FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(?)))`),
    pruneDeliveries: p('DELETE FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(?))'),
    pruneIds: p(`DELETE FROM event_ids WHERE (id, seq) IN
                 (SELECT id, seq FROM events WHERE seq IN (SELECT value FROM json_each(?)))`),
    pruneEvents: p('DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?))'),
    list: p<DeliveryRow>(`
      SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
      WHERE (@status IS NULL OR d.status = @status) AND (@handler IS NULL OR d.handler = @handler)
        AND (@eventName IS NULL OR e.name = @eventName) AND d.id > @afterId
      ORDER BY d.id LIMIT @limit`),
    /** The same, newest first: ids below a cursor. */
    listNewest: p<DeliveryRow>(`
      SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
      WHERE (@status IS NULL OR d.status = @status) AND (@handler IS NULL OR d.handler = @handler)
        AND (@eventName IS NULL OR e.name = @eventName) AND d.id < @beforeId
      ORDER BY d.id DESC LIMIT @limit`),
    one: p<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?`),
    history: p<{
      cycle: number;
      attempt: number;
      started_at: number;
      finished_at: number;
      outcome: string;
      error: string | null;
      error_class: string | null;
      trace_id: string | null;
    }>(
      'SELECT cycle, attempt, started_at, finished_at, outcome, error, error_class, trace_id FROM delivery_attempts WHERE delivery_id = ? ORDER BY id',
    ),
    events: p<EventListRow>(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE (@name IS NULL OR name = @name) AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
    /** Newest first below a seq, by name and task; the receive times are turned into seqs first (seqExtent). */
    searchEvents: p<EventListRow>(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE seq < @beforeSeq AND seq >= @fromSeq AND (@name IS NULL OR name = @name)
        AND (@task IS NULL OR (entity_type = 'task' AND entity_id = @task))
      ORDER BY seq DESC LIMIT @limit`),
    /** The first seq received at or after a time, by the receive-time index (events are stored in time order). */
    seqFrom: p<{ seq: number | null }>('SELECT min(seq) AS seq FROM events WHERE received_at >= ?'),
    eventBySeqFull: p<EventListRow & { raw: string }>(`SELECT ${EVENT_COLUMNS}, raw FROM events WHERE seq = ?`),
    eventAbove: p<EventListRow & { raw: string }>(`SELECT ${EVENT_COLUMNS}, raw FROM events WHERE seq > ? AND id = ?`),
    deliveriesOf: p<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
      WHERE d.event_seq = ? ORDER BY d.id`),
    counts: p<{ status: DeliveryStatus; n: number }>('SELECT status, count(*) AS n FROM deliveries GROUP BY status'),
    unrouted: p<{ n: number }>('SELECT count(*) AS n FROM events WHERE routed = 0'),
    active: p<{ status: string; n: number }>(
      "SELECT status, count(*) AS n FROM deliveries WHERE status IN ('pending', 'running') GROUP BY status",
    ),
    deadCount: p<{ n: number }>("SELECT count(*) AS n FROM deliveries WHERE status = 'dead'"),
    oldestActive: p<{ created_at: number }>(
      "SELECT created_at FROM deliveries WHERE status IN ('pending', 'running') ORDER BY created_at LIMIT 1",
    ),
  };
}
