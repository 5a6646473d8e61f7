// The SQLite store, for one instance: events and their deliveries in one better-sqlite3 file in
// DATA_DIR (WAL, synchronous=FULL). The connection lives in a worker thread (./thread.ts), so that
// commits and fsyncs never block the event loop; the calls of one turn travel in one message and
// are committed in one transaction (group commit), and each promise settles after that commit.
// When the file cannot be written, calls reject with StoreUnavailableError (the route says 503)
// and the thread tries to open it again, instead of taking the process down.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../../errors.js';
import type {
  AcceptResult,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryId,
  DeliveryRecord,
  EventDetail,
  EventFilter,
  EventRecord,
  Health,
  IncomingEvent,
  PruneResult,
  ReplayResult,
  ReplaySelector,
  Store,
} from '../contract.js';
import type { ClaimedDelivery, ClaimStore, Settlement } from './claims.js';
import { type Call, fromWireAccepted, type Op, type WireAccepted, type WireEvent, type WorkerMessage } from './protocol.js';
import { DB_FILE } from './writer.js';

export { DB_FILE };

export interface SqliteStoreOptions {
  readonly dataDir: string;
  /** How long an identical body without a unique id of its own counts as a duplicate. Default 1 h. */
  readonly dedupWindowMs?: number;
  /** Ids waiting in memory that start a merge into event_ids (infinite: never, for the CLI), and ids per merge slice (writer.ts). */
  readonly idMergeAt?: number;
  readonly idMergeSlice?: number;
  /** Time without accepts after which the waiting ids are merged one slice after another. Default 100 ms. */
  readonly mergeIdleMs?: number;
  /** The least time between two attempts to open an unavailable store. Default 1 s. */
  readonly reopenIntervalMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class SqliteStore implements Store, ClaimStore {
  readonly file: string;
  readonly backend = 'sqlite';
  readonly shared = false;
  readonly deliveryIds = 'number';
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #workerData: Record<string, unknown>;
  readonly #reopenIntervalMs: number;
  #worker: Worker | undefined;
  #workerDown: string | undefined;
  #lastSpawn = Number.NEGATIVE_INFINITY;
  readonly #pending = new Map<number, Pending>();
  #outbox: Call[] = [];
  #scheduled = false;
  #nextId = 1;
  #closed: Promise<void> | undefined;
  readonly #dueListeners: (() => void)[] = [];

  constructor(options: SqliteStoreOptions) {
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#reopenIntervalMs = options.reopenIntervalMs ?? 1000;
    this.#workerData = {
      dataDir: options.dataDir,
      dedupWindowMs: options.dedupWindowMs ?? 3_600_000,
      reopenIntervalMs: this.#reopenIntervalMs,
      ...(options.idMergeAt === undefined ? {} : { idMergeAt: options.idMergeAt }),
      ...(options.idMergeSlice === undefined ? {} : { idMergeSlice: options.idMergeSlice }),
      ...(options.mergeIdleMs === undefined ? {} : { mergeIdleMs: options.mergeIdleMs }),
    };
    this.file = `${options.dataDir.replace(/\/+$/, '')}/${DB_FILE}`;
    this.#spawn();
    // Open (and migrate) now, so that a store that cannot open is logged at start.
    void this.health();
  }

  async accept(incoming: readonly IncomingEvent[]): Promise<AcceptResult> {
    let fannedOut = false;
    const inputs = incoming.map(({ event: e, tenant, handlers }): WireEvent => {
      if (handlers.length > 0) fannedOut = true;
      const entity = e.entity;
      return [
        e.id,
        tenant,
        e.idSource,
        e.eventID,
        e.name,
        entity?.type ?? null,
        entity === null ? null : String(entity.id),
        e.raw,
        handlers,
      ];
    });
    const wire = (await this.#call('accept', [inputs])) as WireAccepted;
    const result = fromWireAccepted(
      wire,
      incoming.map((i) => i.event.name),
    );
    if (fannedOut && result.accepted > 0) this.#emitDue();
    return result;
  }

  async health(): Promise<Health> {
    try {
      await this.#call('probe', []);
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Counters since the worker started: transactions committed, events stored, duplicates answered. */
  async stats(): Promise<{ commits: number; accepted: number; duplicates: number }> {
    return (await this.#call('stats', [])) as { commits: number; accepted: number; duplicates: number };
  }

  claim(limit: number, leaseMs: number, exclude: readonly number[] = []) {
    return this.#call('claim', [limit, leaseMs, exclude]) as Promise<{ deliveries: ClaimedDelivery[]; nextDueAt: number | null }>;
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length > 0) await this.#call('settle', [settlements]);
  }

  async releaseClaims(ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await this.#call('release', [ids]);
  }

  async extendLeases(ids: readonly number[], leaseMs: number): Promise<void> {
    if (ids.length > 0) await this.#call('extend', [ids, leaseMs]);
  }

  list(filter: DeliveryFilter = {}) {
    const afterId = filter.afterId === undefined ? undefined : (numericId(filter.afterId) ?? 0);
    return this.#call('list', [{ ...filter, afterId }]) as Promise<DeliveryRecord[]>;
  }

  async show(id: DeliveryId) {
    const n = numericId(id);
    return n === undefined ? undefined : ((await this.#call('show', [n])) as DeliveryDetail | undefined);
  }

  async replay(selector: ReplaySelector): Promise<ReplayResult> {
    let sel = selector;
    let notIds: DeliveryId[] = [];
    if ('ids' in selector) {
      notIds = selector.ids.filter((id) => numericId(id) === undefined);
      sel = { ids: selector.ids.map(numericId).filter((id): id is number => id !== undefined) };
    }
    const r = (await this.#call('replay', [sel])) as ReplayResult;
    const result = notIds.length ? { replayed: r.replayed, skipped: [...r.skipped, ...notIds] } : r;
    if (result.replayed.length > 0) this.#emitDue();
    return result;
  }

  backlog() {
    return this.#call('backlog', []) as Promise<Backlog>;
  }

  counts() {
    return this.#call('counts', []) as Promise<DeliveryCounts>;
  }

  listEvents(filter: EventFilter = {}) {
    return this.#call('listEvents', [filter]) as Promise<EventRecord[]>;
  }

  showEvent(id: string) {
    return this.#call('showEvent', [id]) as Promise<EventDetail | undefined>;
  }

  prune(cutoff: number) {
    return this.#call('prune', [cutoff]) as Promise<PruneResult>;
  }

  /** Fault injection for tests: ends the worker thread as a crash would. */
  async [Symbol.for('hubex-router.test.crashStoreWorker')](): Promise<void> {
    await this.#worker?.terminate();
  }

  onDue(listener: () => void): void {
    this.#dueListeners.push(listener);
  }

  /** Commits what was submitted (those calls are answered), then closes the store; later calls reject. */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    this.#flush();
    const worker = this.#worker;
    if (!worker) return;
    worker.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.on('message', (m: WorkerMessage) => {
        if ('closed' in m) void worker.terminate();
      });
      worker.postMessage('close');
    });
    this.#failAll('The store is closed: the router is stopping.');
  }

  #emitDue(): void {
    for (const l of this.#dueListeners) l();
  }

  #call(op: Op, args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError('The store is closed: the router is stopping.'));
    if (!this.#worker && this.#now() - this.#lastSpawn >= this.#reopenIntervalMs) this.#spawn();
    if (!this.#worker) {
      return Promise.reject(new StoreUnavailableError(this.#workerDown ?? 'The store is not running.'));
    }
    const id = this.#nextId++;
    const promise = new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#outbox.push({ id, op, args, now: this.#now() });
    this.#worker.ref(); // a call in flight keeps the process alive until it is answered
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Sent as soon as the current callback is done. The worker batches what reaches it while it
      // commits, so batches grow with the load by themselves, and a lone call waits for nobody.
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#outbox.length === 0 || !this.#worker) return;
    const calls = this.#outbox;
    this.#outbox = [];
    this.#worker.postMessage({ calls });
  }

  #spawn(): void {
    this.#lastSpawn = this.#now();
    const worker = startWorker(this.#workerData);
    worker.on('message', (m: WorkerMessage) => this.#onMessage(m));
    worker.on('error', (err) => this.#onWorkerDown(worker, `its worker thread failed: ${err.message}`));
    worker.on('exit', (code) => this.#onWorkerDown(worker, `its worker thread stopped (exit code ${code})`));
    worker.unref();
    this.#worker = worker;
  }

  #onMessage(m: WorkerMessage): void {
    if ('log' in m) {
      this.#log[m.log.level](m.log.detail ?? {}, m.log.msg);
      return;
    }
    if (!('replies' in m)) return;
    for (const r of m.replies) {
      const p = this.#pending.get(r.id);
      if (!p) continue;
      this.#pending.delete(r.id);
      if (r.error === undefined) p.resolve(r.value);
      else if (r.error.unavailable) p.reject(new StoreUnavailableError(r.error.message));
      else p.reject(Object.assign(new Error(r.error.message), { name: r.error.name }));
    }
    if (this.#pending.size === 0) this.#worker?.unref();
  }

  #onWorkerDown(worker: Worker, why: string): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    if (this.#closed) return;
    // The next worker starts no sooner than reopenIntervalMs after this one died, not after it started.
    this.#lastSpawn = this.#now();
    this.#workerDown = `The store is not available: ${why}.`;
    this.#log.error({ file: this.file, reason: this.#workerDown }, 'store unavailable');
    this.#outbox = [];
    this.#failAll(this.#workerDown);
  }

  #failAll(reason: string): void {
    for (const p of this.#pending.values()) p.reject(new StoreUnavailableError(reason));
    this.#pending.clear();
  }
}

/** Starts ./thread.js; under vitest or tsx the sources are .ts, and tsx's loader is registered first. */
function startWorker(workerData: Record<string, unknown>): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? './thread.ts' : './thread.js', import.meta.url);
  if (!fromSource) return new Worker(url, { workerData });
  // The ESM build of tsx's API (require.resolve finds the CommonJS one, which cannot register here).
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const source = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(source, { eval: true, workerData });
}

/** A delivery id as this store knows them: a whole number (or its digits); anything else names none. */
function numericId(id: DeliveryId): number | undefined {
  const n = typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
