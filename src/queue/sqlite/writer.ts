// The SQLite side of the store. It runs in a worker thread (./worker.ts), so that commits, fsyncs
// and checkpoints never hold up the event loop that answers HubEx. Everything here is synchronous.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Database, DRIVER, type Statement } from './driver.js';
import type {
  AttemptError,
  Backlog,
  AttemptRecord,
  ClaimedDelivery,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryRecord,
  DeliveryStatus,
  EventDetail,
  EventFilter,
  EventRecord,
  PruneResult,
  ReplayResult,
  ReplaySelector,
  Settlement,
  StoredEvent,
} from '../deliveries.js';
import type { AcceptedEvent, AcceptResult } from '../inbox.js';
import type { MergeState } from './merge-pacer.js';
import { migrate } from './migrations.js';

export const DB_FILE = 'hubex-router.db';

/** An event as the route hands it over: what is stored, plus the handlers it fans out to. */
export interface EventInput {
  readonly key: string;
  readonly idSource: 'payload' | 'hash';
  readonly eventID: number | null;
  readonly name: string;
  readonly entityType: string | null;
  readonly entityId: string | null;
  readonly raw: string;
  readonly handlers: readonly string[];
}

export interface WriterOptions {
  readonly dataDir: string;
  readonly dedupWindowMs: number;
  readonly reopenIntervalMs: number;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, detail?: Record<string, unknown>) => void;
  /** How many ids accepted since the last merge start one into event_ids. Default 50,000. */
  readonly idMergeAt?: number;
  /** How many ids one slice of a merge writes (one transaction, run after a group commit). Default 250. */
  readonly idMergeSlice?: number;
}

/** What the dedup check needs of a stored id; none of it changes once stored. */
interface KnownId {
  readonly seq: number;
  readonly id_source: string;
  readonly received_at: number;
}

type IdRow = KnownId & { readonly id: string };
type IdEntry = readonly [id: string, seq: number];
const REPEAT_SUFFIX = /^[1-9]\d*$/;
const byId = (a: IdEntry, b: IdEntry) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Thrown when the store cannot take writes; the message says why, for an operator. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

export class SqliteWriter {
  readonly file: string;
  #db: Database | undefined;
  #s: ReturnType<typeof prepare> | undefined;
  #lastOpenAttempt = Number.NEGATIVE_INFINITY;
  #reason = 'the store has not been opened';
  #closed = false;
  readonly stats = { commits: 0, accepted: 0, duplicates: 0 };
  // Ids of events above ids_indexed_through: accepted since the last merge into event_ids, so
  // not yet findable there. Read back from the events table at open; see indexIds().
  readonly #recent = new Map<string, KnownId>();
  // The same ids, to be written to event_ids, grouped by their first two characters: a merge
  // takes the groups in key order, so each slice is a run of neighbouring keys without a sort of
  // all of them (50,000 keys took 40 ms to sort, a stall for every request meanwhile).
  #unmerged = new Map<string, IdEntry[]>();
  #unmergedCount = 0;
  #merge:
    | { readonly groups: ReadonlyMap<string, IdEntry[]>; readonly order: readonly string[]; group: number; offset: number; readonly through: number }
    | undefined;
  /** Repeat ids ('<key>.<n>') held in #recent, by key: the repeats not yet in event_ids. */
  #recentRepeats = new Map<string, string[]>();
  /** Ids put in #recent by the transaction under way: forgotten again if it rolls back. */
  #added: string[] = [];
  /** The highest seq this connection knows of; another process (the CLI) may have stored more. */
  #maxSeq = 0;

  constructor(private readonly opts: WriterOptions) {
    this.file = join(opts.dataDir, DB_FILE);
  }

  /** Opens the store when it is not open and the last try is not too recent; throws when unavailable. */
  ensureOpen(now: number): void {
    if (this.#closed) throw new UnavailableError('The store is closed: the router is stopping.');
    if (this.#db?.open) return;
    if (now - this.#lastOpenAttempt >= this.opts.reopenIntervalMs) this.#open(now);
    if (!this.#db?.open) throw new UnavailableError(this.#reason);
  }

  #open(now: number): void {
    this.#lastOpenAttempt = now;
    let db: Database | undefined;
    try {
      mkdirSync(this.opts.dataDir, { recursive: true });
      db = new Database(this.file);
      db.pragma('journal_mode = WAL');
      // FULL: a commit survives power loss, not only a crash. Group commit makes it cheap.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      // Checkpoints are SQLite's own (wal_autocheckpoint, 1,000 pages) on this thread: the WAL stays
      // small under any load (a checkpoint thread beside it let it grow by gigabytes: bench/RESULTS.md).
      // After a checkpoint resets the WAL, it is cut back to this size instead of staying at its peak.
      db.pragma('journal_size_limit = 67108864');
      migrate(db);
      const s = prepare(db);
      s.probe.run(new Date(now).toISOString()); // proves that the file takes writes
      this.#loadRecentIds(db, s);
      this.#db = db;
      this.#s = s;
      this.opts.log('info', 'store open', { file: this.file, driver: DRIVER });
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already unusable
      }
      this.fail(err);
    }
  }

  /** Reads back the ids above the mark, in one read transaction: a router may write meanwhile. */
  #loadRecentIds(db: Database, s: ReturnType<typeof prepare>): void {
    this.#recent.clear();
    this.#recentRepeats = new Map();
    this.#unmerged = new Map();
    this.#unmergedCount = 0;
    this.#merge = undefined;
    db.transaction(() => {
      const through = Number(s.getMeta.get('ids_indexed_through')?.value ?? 0);
      for (const r of s.idsAbove.iterate(through)) {
        this.#remember(r.id, { seq: r.seq, id_source: r.id_source, received_at: r.received_at });
      }
      this.#maxSeq = Math.max(through, s.maxSeq.get()?.seq ?? 0);
    })();
  }

  /** Records why the store cannot take writes (logged once per distinct reason) and returns the error. */
  fail(err: unknown): UnavailableError {
    if (err instanceof UnavailableError) return err;
    // The answer (readyz) names no path: it may be reachable from outside. The log has the file.
    const detail = (err instanceof Error ? err.message : String(err)).split(this.opts.dataDir).join('DATA_DIR');
    const reason = `The store cannot take writes (${detail}); check that DATA_DIR is writable and the disk has room.`;
    if (reason !== this.#reason) this.opts.log('error', 'store unavailable', { file: this.file, reason });
    this.#reason = reason;
    // A connection that failed a write may be in a bad state: open a fresh one next time.
    this.#dropConnection();
    return new UnavailableError(reason);
  }

  #dropConnection(): void {
    try {
      this.#db?.close();
    } catch {
      // already closed
    }
    this.#db = undefined;
    this.#s = undefined;
  }

  /**
   * Runs the items in one transaction, so that one bad item fails alone: first all together (a
   * savepoint per item costs about a quarter of an accept), and when one throws, again with
   * each in its own savepoint.
   */
  transaction<T>(now: number, items: readonly T[], each: (item: T) => unknown): ({ ok: true; value: unknown } | { ok: false; error: unknown })[] {
    try {
      return this.#tx(now, () => items.map((item) => ({ ok: true as const, value: each(item) })));
    } catch (err) {
      if (err instanceof UnavailableError) throw err; // the whole commit failed, and every caller hears it
    }
    return this.#tx(now, () => {
      const db = this.#db!;
      return items.map((item) => {
        const mark = this.#added.length;
        const maxSeq = this.#maxSeq;
        try {
          return { ok: true as const, value: db.transaction(() => each(item))() };
        } catch (error) {
          if (isIoError(error)) throw error;
          this.#forget(this.#added.splice(mark));
          this.#maxSeq = maxSeq; // the seq is given again (AUTOINCREMENT rolls back too)
          return { ok: false as const, error };
        }
      });
    });
  }

  #tx<R>(now: number, fn: () => R): R {
    this.ensureOpen(now);
    const stats = { ...this.stats };
    const maxSeq = this.#maxSeq;
    this.#added = [];
    try {
      const out = this.#db!.transaction(fn)();
      this.stats.commits++;
      return out;
    } catch (err) {
      this.#forget(this.#added);
      this.#maxSeq = maxSeq;
      Object.assign(this.stats, stats);
      throw isIoError(err) ? this.fail(err) : err;
    } finally {
      this.#added = [];
    }
  }

  /** PRAGMA synchronous of the connection (2 = FULL): every accept's commit is synced. */
  get synchronous(): number | undefined {
    return this.#db?.open ? (this.#db.pragma('synchronous', { simple: true }) as number) : undefined;
  }

  /**
   * Whether ids wait to be merged: 'due' when a merge is under way or idMergeAt ids wait,
   * 'behind' when four times that many wait (memory: the worker then merges even under full load).
   */
  get mergeState(): MergeState {
    const at = this.opts.idMergeAt ?? 50_000;
    if (this.#recent.size >= 4 * at) return 'behind'; // all that memory holds: a merge under way included
    return this.#merge || this.#unmergedCount >= at ? 'due' : 'idle';
  }

  /** Ids one slice of a merge writes, about. */
  get mergeSlice(): number {
    return this.opts.idMergeSlice ?? 250;
  }

  /** Their entries in #unmerged stay, and are passed over by the merge (see indexIds). */
  #forget(ids: readonly string[]): void {
    for (const id of ids) this.#recent.delete(id);
  }

  #remember(id: string, known: KnownId): void {
    this.#recent.set(id, known);
    const dot = id.lastIndexOf('.');
    if (dot > 0 && REPEAT_SUFFIX.test(id.slice(dot + 1))) {
      const key = id.slice(0, dot);
      const list = this.#recentRepeats.get(key);
      if (list) list.push(id);
      else this.#recentRepeats.set(key, [id]);
    }
    const prefix = id.slice(0, 2);
    const group = this.#unmerged.get(prefix);
    if (group) group.push([id, known.seq]);
    else this.#unmerged.set(prefix, [[id, known.seq]]);
    this.#unmergedCount++;
  }

  /** The stored repeats '<key>.<n>' of a key: those in event_ids, and those in memory. */
  #repeatsOf(key: string): (KnownId & { id: string; n: number })[] {
    const out: (KnownId & { id: string; n: number })[] = [];
    const add = (id: string, k: KnownId) => {
      const suffix = id.slice(key.length + 1);
      if (REPEAT_SUFFIX.test(suffix)) out.push({ ...k, id, n: Number(suffix) });
    };
    for (const r of this.#s!.repeatsIndexed.all(`${key}.`, `${key}/`)) add(r.id, r);
    const listed = this.#recentRepeats.get(key);
    if (listed) {
      const live = listed.filter((id) => this.#recent.has(id));
      if (live.length > 0) this.#recentRepeats.set(key, live);
      else this.#recentRepeats.delete(key);
      for (const id of live) add(id, this.#recent.get(id)!);
    }
    return out;
  }

  /** The stored event that has this id, if any: the ids in memory, then event_ids. */
  #find(id: string): KnownId | undefined {
    return this.#recent.get(id) ?? this.#s!.byIndexedId.get(id);
  }

  /**
   * Merges the ids accepted since the last merge into event_ids, one slice per call, in key order:
   * neighbouring keys share leaf pages that as many single inserts would each write to the WAL.
   * Starts a merge when idMergeAt ids are waiting. The worker calls it between commits, when
   * ./merge-pacer.ts says (after the answers have gone out), in slices short enough not to hold up
   * the next commit for long. Returns whether a slice was written (false: nothing waits, or the
   * store is not open).
   */
  indexIds(now: number): boolean {
    if (!this.#db?.open) return false; // unavailable: nothing done, the caller waits
    const db = this.#db;
    if (!this.#merge) {
      if (this.mergeState === 'idle') return false;
      const groups = this.#unmerged;
      this.#merge = { groups, order: [...groups.keys()].sort(), group: 0, offset: 0, through: this.#maxSeq };
      this.#unmerged = new Map();
      this.#unmergedCount = 0;
    }
    const m = this.#merge;
    // The next slice: whole groups while they fit, or a part of one larger than a slice (ids
    // that share their first characters, such as sequential numbers), sorted once.
    const size = this.mergeSlice;
    const taken: IdEntry[] = [];
    let { group, offset } = m;
    while (group < m.order.length && taken.length < size) {
      const entries = m.groups.get(m.order[group]!)!;
      if (offset === 0 && entries.length > size) entries.sort(byId);
      const end = Math.min(entries.length, offset + size - taken.length);
      for (let k = offset; k < end; k++) taken.push(entries[k]!);
      if (end < entries.length) offset = end;
      else {
        group++;
        offset = 0;
      }
    }
    // An id rolled back or pruned since is no longer in #recent with that seq: not written.
    const slice = taken.filter((e) => this.#recent.get(e[0])?.seq === e[1]).sort(byId);
    const last = group >= m.order.length;
    const s = this.#s!;
    // NORMAL: no fsync at this commit (a merge lost to a power cut is made again from the events
    // at the next open; the next accept's fsync of the WAL takes these frames along), but a
    // checkpoint that this commit sets off still syncs the WAL and the database file (with OFF it
    // would not, and could lose acknowledged events that it moved out of the WAL).
    db.pragma('synchronous = NORMAL');
    try {
      this.#tx(now, () => {
        for (const [id, seq] of slice) s.indexId.run(id, seq);
        if (last) s.setIndexedThrough.run(m.through);
      });
    } finally {
      if (db.open) db.pragma('synchronous = FULL');
    }
    // Only now, after the commit: a slice that failed is tried again.
    m.group = group;
    m.offset = offset;
    for (const [id] of slice) this.#recent.delete(id); // found in event_ids from now on
    if (last) this.#merge = undefined;
    return true;
  }

  probe(now: number): void {
    this.ensureOpen(now);
    try {
      this.#s!.probe.run(new Date(now).toISOString());
    } catch (err) {
      throw this.fail(err); // any failure of this one write means the store cannot take writes
    }
  }

  /** Stores one request's events (inside transaction()). */
  accept(events: readonly EventInput[], now: number, windowMs = this.opts.dedupWindowMs): AcceptResult {
    const s = this.#s!;
    let accepted = 0;
    const out: AcceptedEvent[] = [];
    for (const e of events) {
      const prior = this.#find(e.key);
      let id = e.key;
      if (prior) {
        // The same body again after the dedup window is a new event, with an id of its own:
        // '<key>.2', '<key>.3', ... A repeat is a duplicate of the latest of them while in the window.
        let latest = { ...prior, id };
        let n = 1;
        if (prior.id_source === 'hash') {
          // All of them, gaps left by a prune included: the latest by seq, the next after the highest.
          for (const r of this.#repeatsOf(e.key)) {
            n = Math.max(n, r.n);
            if (r.seq > latest.seq) latest = r;
          }
        }
        if (prior.id_source === 'payload' || now - latest.received_at < windowMs) {
          s.duplicate.run(now, latest.seq);
          out.push({ id: latest.id, name: e.name, duplicate: true });
          continue;
        }
        id = `${e.key}.${n + 1}`;
      }
      const seq = Number(
        s.insert.run(id, e.idSource, e.eventID, e.name, e.entityType, e.entityId, now, e.handlers.length, e.raw)
          .lastInsertRowid,
      );
      this.#remember(id, { seq, id_source: e.idSource, received_at: now });
      this.#added.push(id);
      this.#maxSeq = seq;
      for (const h of e.handlers) s.fanOut.run(seq, h, now, now, now);
      accepted++;
      out.push({ id, name: e.name, duplicate: false });
    }
    this.stats.accepted += accepted;
    this.stats.duplicates += events.length - accepted;
    return { accepted, duplicates: events.length - accepted, events: out };
  }

  /** Claims due deliveries (inside transaction()). */
  claim(limit: number, leaseMs: number, exclude: readonly number[], now: number): { deliveries: ClaimedDelivery[]; nextDueAt: number | null } {
    const s = this.#s!;
    // Chosen first, then taken: a running one (its lease ran out) is told apart as recovered.
    const chosen = limit > 0 ? s.claimable.all(now, JSON.stringify(exclude), Math.min(limit, 1000)) : [];
    const recovered = new Set(chosen.filter((c) => c.status === 'running').map((c) => c.id));
    const order = new Map(chosen.map((c, i) => [c.id, i]));
    const rows = chosen.length > 0 ? s.claim.all(now + leaseMs, now, JSON.stringify(chosen.map((c) => c.id))) : [];
    rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!); // oldest due first, as chosen
    const deliveries = rows.map((r) => ({
      id: r.id,
      handler: r.handler,
      attempt: r.attempts,
      replays: r.replays,
      recovered: recovered.has(r.id),
      event: toStoredEvent(s.eventBySeq.get(r.event_seq)!),
    }));
    const next = s.nextDue.get(JSON.stringify(exclude))?.due_at ?? null;
    return { deliveries, nextDueAt: next };
  }

  /** Records a run's outcome (inside transaction()). */
  settle(x: Settlement, now: number): void {
    const s = this.#s!;
    const o = x.outcome;
    const err = 'error' in o ? o.error : undefined;
    s.attempt.run(x.id, x.replays, x.attempt, x.startedAt, now, o.kind, err?.message ?? null, err?.errorClass ?? null, err?.traceId ?? null);
    // Only the run that holds the delivery settles it: a replay or a second claim in between wins.
    const guard = [x.id, x.attempt, x.replays] as const;
    switch (o.kind) {
      case 'done':
      case 'skipped':
        s.finish.run('done', now, null, null, null, ...guard);
        break;
      case 'dead':
        s.finish.run('dead', now, err!.message, err!.errorClass, err!.traceId ?? null, ...guard);
        break;
      case 'retry':
        s.retry.run(o.runAt, now, err!.message, err!.errorClass, err!.traceId ?? null, ...guard);
        break;
      case 'released':
        s.release.run(now, now, ...guard);
        break;
    }
  }

  releaseClaims(ids: readonly number[], now: number): void {
    this.#s!.unclaim.run(now, now, JSON.stringify(ids));
  }

  extendLeases(ids: readonly number[], leaseMs: number, now: number): void {
    this.#s!.extend.run(now + leaseMs, now, JSON.stringify(ids));
  }

  replay(sel: ReplaySelector, now: number): ReplayResult {
    const s = this.#s!;
    if ('ids' in sel) {
      const replayed = s.replayIds.all(now, now, JSON.stringify(sel.ids)).map((r) => r.id);
      const done = new Set(replayed);
      return { replayed, skipped: sel.ids.filter((id) => !done.has(id as number)) };
    }
    const replayed = s.replayDead.all({ now, handler: sel.handler ?? null, eventName: sel.eventName ?? null }).map((r) => r.id);
    return { replayed, skipped: [] };
  }

  /** Deletes, in slices, finished events received before `cutoff` with their deliveries and history. */
  prune(cutoff: number, now: number, slice = 500): PruneResult {
    let events = 0;
    let deliveries = 0;
    for (;;) {
      const [e, d, rows] = this.#tx(now, () => {
        const rows = this.#s!.prunable.all(cutoff, slice);
        const json = JSON.stringify(rows.map((r) => r.seq));
        this.#s!.pruneAttempts.run(json);
        const nd = this.#s!.pruneDeliveries.run(json).changes;
        this.#s!.pruneIds.run(json);
        const ne = this.#s!.pruneEvents.run(json).changes;
        return [ne, nd, rows] as const;
      });
      for (const r of rows) if (this.#recent.get(r.id)?.seq === r.seq) this.#recent.delete(r.id);
      events += e;
      deliveries += d;
      if (e < slice) return { events, deliveries };
    }
  }

  list(f: DeliveryFilter, now: number): DeliveryRecord[] {
    this.ensureOpen(now);
    const limit = Math.min(Math.max(f.limit ?? 100, 1), 1000);
    return this.#s!.list
      .all({ status: f.status ?? null, handler: f.handler ?? null, eventName: f.eventName ?? null, afterId: f.afterId ?? 0, limit })
      .map(toRecord);
  }

  get(id: number, now: number): DeliveryDetail | undefined {
    this.ensureOpen(now);
    const s = this.#s!;
    const row = s.one.get(id);
    if (!row) return undefined;
    const history: AttemptRecord[] = s.history.all(id).map((a) => ({
      cycle: a.cycle,
      attempt: a.attempt,
      startedAt: a.started_at,
      finishedAt: a.finished_at,
      outcome: a.outcome as AttemptRecord['outcome'],
      error: errorOf(a.error, a.error_class, a.trace_id),
    }));
    return { ...toRecord(row), event: toStoredEvent(s.eventBySeq.get(row.event_seq)!), history };
  }

  listEvents(f: EventFilter, now: number): EventRecord[] {
    this.ensureOpen(now);
    const limit = Math.min(Math.max(f.limit ?? 100, 1), 1000);
    return this.#s!.events.all({ name: f.name ?? null, afterSeq: f.afterSeq ?? 0, limit }).map(toEventRecord);
  }

  getEvent(id: string, now: number): EventDetail | undefined {
    this.ensureOpen(now);
    const s = this.#s!;
    // Another process (the router, for the CLI) may have stored events since this one opened.
    const seq = this.#find(id)?.seq;
    const row = seq === undefined ? s.eventAbove.get(this.#maxSeq, id) : s.eventBySeqFull.get(seq);
    if (!row) return undefined;
    return { ...toEventRecord(row), raw: row.raw, deliveries: s.deliveriesOf.all(row.seq).map(toRecord) };
  }

  backlog(now: number): Backlog {
    this.ensureOpen(now);
    const s = this.#s!;
    const out = { pending: 0, running: 0 };
    for (const r of s.active.all()) out[r.status as 'pending' | 'running'] = r.n;
    return {
      ...out,
      dead: s.deadCount.get()!.n,
      unroutedEvents: s.unrouted.get()!.n,
      oldestCreatedAt: s.oldestActive.get()?.created_at ?? null,
    };
  }

  counts(now: number): DeliveryCounts {
    this.ensureOpen(now);
    const s = this.#s!;
    const out: Record<DeliveryStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
    for (const r of s.counts.all()) out[r.status] = r.n;
    return { ...out, unroutedEvents: s.unrouted.get()!.n };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db?.close();
    } catch {
      // nothing more to do
    }
    this.#db = undefined;
    this.#s = undefined;
  }
}

export const isIoError = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED|PERM)/.test(code);
};

interface DeliveryRow {
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
}

interface EventRow {
  seq: number;
  id: string;
  name: string;
  received_at: number;
  raw: string;
}

interface EventListRow {
  seq: number;
  id: string;
  name: string;
  event_id: number | null;
  entity_type: string | null;
  entity_id: string | null;
  received_at: number;
  duplicates: number;
  routed: number;
}

const toEventRecord = (r: EventListRow): EventRecord => ({
  seq: r.seq,
  id: r.id,
  name: r.name,
  eventID: r.event_id,
  entity: r.entity_type === null || r.entity_id === null ? null : { type: r.entity_type, id: r.entity_id },
  receivedAt: r.received_at,
  duplicates: r.duplicates,
  routed: r.routed,
});

const EVENT_COLUMNS = 'seq, id, name, event_id, entity_type, entity_id, received_at, duplicates, routed';

const toStoredEvent = (r: EventRow): StoredEvent => ({ seq: r.seq, id: r.id, name: r.name, receivedAt: r.received_at, raw: r.raw });

function errorOf(message: string | null, errorClass: string | null, traceId: string | null): AttemptError | null {
  if (message === null) return null;
  return { message, errorClass: errorClass ?? 'Error', ...(traceId ? { traceId } : {}) };
}

const toRecord = (r: DeliveryRow): DeliveryRecord => ({
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
});

const DELIVERY_COLUMNS = `d.id, d.event_seq, e.id AS event_id, e.name AS event_name, d.handler, d.status, d.attempts,
  d.replays, d.due_at, d.created_at, d.updated_at, d.last_error, d.last_error_class, d.last_trace_id`;

function prepare(db: Database) {
  type Row<T> = Statement<unknown[], T>;
  const p = <T = unknown>(sql: string) => db.prepare(sql) as Row<T>;
  return {
    byIndexedId: p<KnownId>(
      'SELECT e.seq, e.id_source, e.received_at FROM event_ids k JOIN events e ON e.seq = k.seq WHERE k.id = ?',
    ),
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
    insert: p(`INSERT INTO events (id, id_source, event_id, name, entity_type, entity_id, received_at, routed, raw)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    duplicate: p('UPDATE events SET duplicates = duplicates + 1, last_duplicate_at = ? WHERE seq = ?'),
    fanOut: p(`INSERT INTO deliveries (event_seq, handler, status, due_at, created_at, updated_at)
               VALUES (?, ?, 'pending', ?, ?, ?)`),
    probe: p(`INSERT INTO meta (key, value) VALUES ('last_write_probe', ?)
              ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
    claimable: p<{ id: number; status: DeliveryStatus }>(`
      SELECT id, status FROM deliveries
      WHERE status IN ('pending', 'running') AND due_at <= ?
        AND id NOT IN (SELECT value FROM json_each(?))
      ORDER BY due_at, id LIMIT ?`),
    claim: p<{ id: number; event_seq: number; handler: string; attempts: number; replays: number }>(`
      UPDATE deliveries SET status = 'running', attempts = attempts + 1, due_at = ?, updated_at = ?
      WHERE id IN (SELECT value FROM json_each(?))
      RETURNING id, event_seq, handler, attempts, replays`),
    nextDue: p<{ due_at: number }>(`
      SELECT due_at FROM deliveries
      WHERE status IN ('pending', 'running') AND id NOT IN (SELECT value FROM json_each(?))
      ORDER BY due_at LIMIT 1`),
    eventBySeq: p<EventRow>('SELECT seq, id, name, received_at, raw FROM events WHERE seq = ?'),
    attempt: p(`INSERT INTO delivery_attempts
                (delivery_id, cycle, attempt, started_at, finished_at, outcome, error, error_class, trace_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    finish: p(`UPDATE deliveries SET status = ?, due_at = NULL, updated_at = ?,
                 last_error = ?, last_error_class = ?, last_trace_id = ?
               WHERE id = ? AND status = 'running' AND attempts = ? AND replays = ?`),
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
      UPDATE deliveries SET status = 'pending', attempts = 0, replays = replays + 1, due_at = ?, updated_at = ?
      WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('dead', 'done')
      RETURNING id`),
    replayDead: p<{ id: number }>(`
      UPDATE deliveries SET status = 'pending', attempts = 0, replays = replays + 1, due_at = @now, updated_at = @now
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
    one: p<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?`),
    history: p<{ cycle: number; attempt: number; started_at: number; finished_at: number; outcome: string; error: string | null; error_class: string | null; trace_id: string | null }>(
      'SELECT cycle, attempt, started_at, finished_at, outcome, error, error_class, trace_id FROM delivery_attempts WHERE delivery_id = ? ORDER BY id',
    ),
    events: p<EventListRow>(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE (@name IS NULL OR name = @name) AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
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
