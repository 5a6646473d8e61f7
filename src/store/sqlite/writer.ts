// The SQLite side of the store, in its thread (./thread.ts): the transactions (group commit, a bad
// item failing alone, the dedup index rolled back with them), the accept, the merge of ids, and the
// delivery state machine and reads over ./connection.ts. Everything here is synchronous.
import { join } from 'node:path';
import type {
  AcceptResult,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryRecord,
  EventDetail,
  EventFilter,
  EventPage,
  EventRecord,
  EventSearch,
  PruneResult,
  ReplayResult,
  ReplaySelector,
} from '../contract.js';
import { StoreUnavailableError } from '../../errors.js';
import { acceptEvents, type EventInput } from './accept.js';
import type { ClaimedDelivery, Settlement } from './claims.js';
import * as deliveries from './deliveries.js';
import { Connection } from './connection.js';
import { EventIds } from './event-ids.js';
import type { MergeState } from './merge-pacer.js';
import * as reads from './reads.js';
import type { Statements } from './sql.js';
import * as sync from './sync.js';

export const DB_FILE = 'hubex-router.db';

export type { EventInput } from './accept.js';

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

export const isIoError = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(IOERR|FULL|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED|PERM)/.test(code);
};

type ItemResult = { ok: true; value: unknown } | { ok: false; error: unknown };

export class SqliteWriter {
  readonly file: string;
  readonly stats = { commits: 0, accepted: 0, duplicates: 0 };
  readonly #c: Connection;
  readonly #ids: EventIds;

  constructor(private readonly opts: WriterOptions) {
    this.file = join(opts.dataDir, DB_FILE);
    this.#ids = new EventIds({ mergeAt: opts.idMergeAt, slice: opts.idMergeSlice });
    this.#c = new Connection({
      dataDir: opts.dataDir,
      file: this.file,
      reopenIntervalMs: opts.reopenIntervalMs,
      log: opts.log,
      // One read transaction: a router may write meanwhile.
      loaded: (db, s) => db.transaction(() => this.#ids.load(s))(),
    });
  }

  /** Opens the store when it is not open and the last try is not too recent; throws when unavailable. */
  ensureOpen(now: number): void {
    this.#c.ensureOpen(now);
  }

  /** Records why the store cannot take writes and returns the error (the connection is dropped). */
  fail(err: unknown): StoreUnavailableError {
    return this.#c.fail(err);
  }

  /**
   * Runs the items in one transaction, so that one bad item fails alone: first all together (a
   * savepoint per item costs about a quarter of an accept), and when one throws, again with each
   * in its own savepoint.
   */
  transaction<T>(now: number, items: readonly T[], each: (item: T) => unknown): ItemResult[] {
    try {
      return this.#tx(now, () => items.map((item) => ({ ok: true as const, value: each(item) })));
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err; // the whole commit failed, and every caller hears it
    }
    return this.#tx(now, () => {
      const db = this.#c.db!;
      return items.map((item): ItemResult => {
        const mark = this.#ids.mark();
        try {
          return { ok: true, value: db.transaction(() => each(item))() };
        } catch (error) {
          if (isIoError(error)) throw error;
          this.#ids.rollBack(mark);
          return { ok: false, error };
        }
      });
    });
  }

  #tx<R>(now: number, fn: () => R): R {
    this.ensureOpen(now);
    const stats = { ...this.stats };
    this.#ids.settle();
    const mark = this.#ids.mark();
    try {
      const out = this.#c.db!.transaction(fn)();
      this.stats.commits++;
      return out;
    } catch (err) {
      this.#ids.rollBack(mark);
      Object.assign(this.stats, stats);
      throw isIoError(err) ? this.fail(err) : err;
    } finally {
      this.#ids.settle();
    }
  }

  /** PRAGMA synchronous of the connection (2 = FULL): every accept's commit is synced. */
  get synchronous(): number | undefined {
    return this.#c.db?.open ? (this.#c.db.pragma('synchronous', { simple: true }) as number) : undefined;
  }

  get mergeState(): MergeState {
    return this.#ids.mergeState;
  }

  /** Ids one slice of a merge writes, about. */
  get mergeSlice(): number {
    return this.#ids.slice;
  }

  /**
   * Writes the next slice of the merge of ids into event_ids. The thread calls it between commits,
   * when ./merge-pacer.ts says (after the answers have gone out). Returns whether a slice was
   * written (false: nothing waits, or the store is not open).
   */
  indexIds(now: number): boolean {
    const db = this.#c.db;
    if (!db?.open) return false; // unavailable: nothing done, the caller waits
    const slice = this.#ids.nextSlice();
    if (!slice) return false;
    const s = this.#c.s!;
    // NORMAL: no fsync at this commit (a merge lost to a power cut is made again from the events
    // at the next open; the next accept's fsync of the WAL takes these frames along), but a
    // checkpoint that this commit sets off still syncs the WAL and the database file (with OFF it
    // would not, and could lose acknowledged events that it moved out of the WAL).
    db.pragma('synchronous = NORMAL');
    try {
      this.#tx(now, () => {
        for (const [id, seq] of slice.entries) s.indexId.run(id, seq);
        if (slice.last) s.setIndexedThrough.run(slice.through);
      });
    } finally {
      if (db.open) db.pragma('synchronous = FULL');
    }
    slice.done(); // only now, after the commit: a slice that failed is tried again
    return true;
  }

  probe(now: number): void {
    this.ensureOpen(now);
    try {
      this.#c.s!.probe.run(new Date(now).toISOString());
    } catch (err) {
      throw this.fail(err); // any failure of this one write means the store cannot take writes
    }
  }

  /** Stores one request's events (inside transaction()). */
  accept(events: readonly EventInput[], now: number, windowMs = this.opts.dedupWindowMs): AcceptResult {
    const result = acceptEvents(this.#c.s!, this.#ids, events, now, windowMs);
    this.stats.accepted += result.accepted;
    this.stats.duplicates += result.duplicates;
    return result;
  }

  // The delivery state machine, inside transaction().
  claim(
    limit: number,
    leaseMs: number,
    exclude: readonly number[],
    now: number,
    excludeHandlers: readonly string[] = [],
  ): { deliveries: ClaimedDelivery[]; nextDueAt: number | null } {
    return deliveries.claim(this.#c.s!, limit, leaseMs, exclude, now, excludeHandlers);
  }

  settle(x: Settlement, now: number): void {
    deliveries.settle(this.#c.s!, x, now);
  }

  releaseClaims(ids: readonly number[], now: number): void {
    deliveries.releaseClaims(this.#c.s!, ids, now);
  }

  extendLeases(ids: readonly number[], leaseMs: number, now: number): void {
    deliveries.extendLeases(this.#c.s!, ids, leaseMs, now);
  }

  replay(sel: ReplaySelector, now: number): ReplayResult {
    return deliveries.replay(this.#c.s!, sel, now);
  }

  // The reconciler's records, inside transaction().
  writeCursor(tenant: string, name: string, value: string): void {
    sync.writeCursor(this.#c.s!, tenant, name, value);
  }

  lease(name: string, holder: string, ms: number, now: number): boolean {
    return sync.lease(this.#c.s!, name, holder, ms, now);
  }

  releaseLease(name: string, holder: string): void {
    sync.releaseLease(this.#c.s!, name, holder);
  }

  readCursor(tenant: string, name: string, now: number): string | null {
    return this.#read(now, (s) => sync.readCursor(s, tenant, name));
  }

  lastPushedTasks(tenant: string, ids: readonly number[], sinceMs: number, now: number): Map<number, number> {
    return this.#read(now, (s) => sync.lastPushedTasks(s, tenant, ids, sinceMs));
  }

  /** Deletes, in slices, finished events received before `cutoff` with their deliveries and history. */
  prune(cutoff: number, now: number, slice = 500): PruneResult {
    let events = 0;
    let removed = 0;
    for (;;) {
      const [e, d, rows] = this.#tx(now, () => {
        const s = this.#c.s!;
        const rows = s.prunable.all(cutoff, slice);
        const json = JSON.stringify(rows.map((r) => r.seq));
        s.pruneAttempts.run(json);
        const nd = s.pruneDeliveries.run(json).changes;
        s.pruneIds.run(json);
        const ne = s.pruneEvents.run(json).changes;
        return [ne, nd, rows] as const;
      });
      for (const r of rows) this.#ids.forget(r.id, r.seq);
      events += e;
      removed += d;
      if (e < slice) return { events, deliveries: removed };
    }
  }

  // Reads, outside any transaction.
  #read<T>(now: number, fn: (s: Statements) => T): T {
    this.ensureOpen(now);
    return fn(this.#c.s!);
  }

  list(f: DeliveryFilter, now: number): DeliveryRecord[] {
    return this.#read(now, (s) => reads.list(s, f));
  }

  show(id: number, now: number): DeliveryDetail | undefined {
    return this.#read(now, (s) => reads.show(s, id));
  }

  listEvents(f: EventFilter, now: number): EventRecord[] {
    return this.#read(now, (s) => reads.listEvents(s, f));
  }

  /** Another process (the router, for the command line) may have stored events since this one opened. */
  showEvent(id: string, now: number): EventDetail | undefined {
    return this.#read(now, (s) => reads.showEvent(s, id, this.#ids.find(s, id)?.seq, this.#ids.maxSeq));
  }

  searchEvents(f: EventSearch, now: number): EventPage {
    return this.#read(now, (s) => reads.searchEvents(s, f));
  }

  backlog(now: number): Backlog {
    return this.#read(now, reads.backlog);
  }

  counts(now: number): DeliveryCounts {
    return this.#read(now, reads.counts);
  }

  async close(): Promise<void> {
    this.#c.close();
  }
}
