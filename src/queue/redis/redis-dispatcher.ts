// The dispatcher on Redis: a BullMQ worker in every instance takes delivery jobs (at most
// HANDLER_CONCURRENCY at once), runs them with the same runner as SQLite, and records the outcome
// on the job: done (completed), retry later (moved to delayed until its backoff ends), dead
// (failed: the dead letters), released by a shutdown (delayed until now: another instance, or
// this one after its restart, takes it). A job whose instance died is found stalled after
// HANDLER_LEASE_MS by any other instance's worker and runs again: at least once, never lost.
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DeliveryWorker } from '../../delivery/dispatcher.js';
import { type RunnerOptions, runDelivery, ShutdownAbortError, watchLingering } from '../../delivery/runner.js';
import type { AttemptRecord, Outcome } from '../deliveries.js';
import { type DeliveryJob, type DeliveryJobData, type DeliveryJobResult, QUEUE_NAME, type RedisStore, closeConnection, redisConnection } from './redis-store.js';

export interface RedisDispatcherOptions extends RunnerOptions {
  readonly store: RedisStore;
  readonly url: string;
  readonly concurrency: number;
  /** How long a job's lock holds without renewal; a dead instance's jobs run again after it. */
  readonly leaseMs: number;
}

export class RedisDispatcher implements DeliveryWorker {
  readonly #o: RedisDispatcherOptions;
  readonly #runs = new Map<string, AbortController>();
  readonly #lingering = new Set<Promise<unknown>>();
  readonly #idleWaiters: (() => void)[] = [];
  #worker: Worker<DeliveryJobData, DeliveryJobResult | undefined, string> | undefined;
  #connection: Redis | undefined;
  #errors = 0;
  #stopping = false;
  #abandoned = false;

  constructor(options: RedisDispatcherOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#worker) return;
    const o = this.#o;
    this.#connection = redisConnection(o.url, { failFast: false });
    this.#connection.on('error', () => {}); // the store logs Redis going away, once
    this.#worker = new Worker<DeliveryJobData, DeliveryJobResult | undefined, string>(QUEUE_NAME, (job, token) => this.#process(job, token), {
      connection: this.#connection,
      prefix: o.store.prefix,
      concurrency: o.concurrency,
      lockDuration: o.leaseMs,
      stalledInterval: o.leaseMs,
      // A job whose instance died runs again; one that kills its instance every time is dead at
      // its MAX_ATTEMPTS-th stall (BullMQ fails a job on the stall after maxStalledCount).
      maxStalledCount: Math.max(0, o.maxAttempts - 1),
      // After a Redis error (out of memory, READONLY during a failover), BullMQ waits this long
      // before fetching again: 15 s by default, which delayed every delivery (and a shutdown) by as much.
      runRetryDelay: 1000,
      autorun: true,
    });
    this.#worker.on('error', (err) => {
      if (this.#errors++ % 100 === 0) o.log.warn({ error: err.message }, 'the delivery worker cannot reach Redis; it keeps trying');
    });
    this.#worker.on('ready', () => {
      this.#errors = 0;
    });
    // Its connection's first failure (a wrong password in REDIS_URL) is reported by 'error'.
    this.#worker.waitUntilReady().catch(() => {});
  }

  abandon(): void {
    this.#abandoned = true;
  }

  get active(): number {
    return this.#runs.size + this.#lingering.size;
  }

  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Takes no new jobs; running handlers get until `deadlineMs`, then are aborted through
   * ctx.signal and their jobs released (due again at once, the attempt not counted).
   */
  async stop(deadlineMs: number): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    this.#stopping = true; // a job fetched from now on is released at once, not run
    // A worker closed while it still connects leaves its first commands to fail unheard: let it
    // be ready first (a Redis that is away does not hold this up: the close follows at once).
    await Promise.race([worker.waitUntilReady().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    if (this.#abandoned) {
      // Their locks lapse, and BullMQ's stalled check (another instance's, or ours after the
      // restart) runs them again, counted against maxStalledCount.
      if (this.#runs.size > 0) this.#o.log.warn({ running: this.#runs.size }, 'stopping without waiting for running handlers; they run again once their lock lapses');
      await worker.close(true).catch(() => {});
      if (this.#connection) await closeConnection(this.#connection);
      return;
    }
    const closing = worker.close();
    if (this.#runs.size > 0) this.#o.log.info({ running: this.#runs.size, deadlineMs }, 'waiting for running handlers');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([closing.then(() => 'closed' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      this.#o.log.warn({ running: this.#runs.size }, 'shutdown deadline reached: aborting running handlers; they run again after the restart');
      for (const c of this.#runs.values()) c.abort(new ShutdownAbortError());
    }
    await closing.catch((err: unknown) => this.#o.log.warn({ err }, 'the delivery worker did not close cleanly'));
    if (this.#connection) await closeConnection(this.#connection);
    if (this.#lingering.size > 0) {
      this.#o.log.warn({ handlers: this.#lingering.size }, 'handlers that ignored their abort signal are still running at exit');
    }
  }

  async #process(job: DeliveryJob, token: string | undefined): Promise<DeliveryJobResult> {
    const o = this.#o;
    const data = job.data;
    const id = job.id!;
    if (this.#stopping) {
      // Fetched while the worker closes: back to the queue, due now, for another instance.
      await job.moveToDelayed((o.now ?? Date.now)(), token);
      throw new DelayedError();
    }
    const controller = new AbortController();
    this.#runs.set(id, controller);
    let outcome: Outcome;
    let startedAt: number;
    try {
      const attempt = data.attempt + 1;
      const run = await runDelivery(o, { id, handler: data.handler, attempt, event: data.event }, controller);
      ({ outcome, startedAt } = run);
      if (run.work && controller.signal.aborted) {
        // A handler that ignores its abort keeps its job (and its lock, and its slot) until it
        // returns: its retry must not run beside it.
        const work = run.work;
        watchLingering(work, o.log.child({ handler: data.handler, deliveryId: id }), () => this.#lingering.add(work), () => {
          this.#lingering.delete(work);
          this.#notifyIdle();
        });
        await work.catch(() => {});
      }
    } finally {
      this.#runs.delete(id);
      this.#notifyIdle();
    }
    const now = (o.now ?? Date.now)();
    const error = 'error' in outcome ? (outcome.error ?? null) : null;
    const counted = outcome.kind !== 'released';
    const entry: AttemptRecord = {
      cycle: data.replays,
      attempt: data.attempt + 1,
      startedAt,
      finishedAt: now,
      outcome: outcome.kind,
      error,
    };
    const next: DeliveryJobData = {
      ...data,
      attempt: counted ? data.attempt + 1 : data.attempt,
      updatedAt: now,
      dueAt: outcome.kind === 'retry' ? outcome.runAt : outcome.kind === 'released' ? now : null,
      lastError: outcome.kind === 'done' || outcome.kind === 'skipped' ? null : (error ?? data.lastError),
      history: [...data.history, entry],
    };
    // A finished run's record travels in the job's return value, written by BullMQ's own
    // completion (one round trip, not two); the other outcomes update the job's data first.
    // If these writes fail (Redis went away), BullMQ runs the job again a second later, or, when
    // even that cannot be written, once its lock runs out: at least once.
    if (outcome.kind === 'done' || outcome.kind === 'skipped') return { finished: entry } satisfies DeliveryJobResult;
    await job.updateData(next);
    switch (outcome.kind) {
      case 'dead':
        throw new UnrecoverableError(outcome.error.message);
      case 'retry':
      case 'released':
        await job.moveToDelayed(next.dueAt!, token);
        throw new DelayedError();
    }
  }

  #notifyIdle(): void {
    if (this.active > 0) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}
