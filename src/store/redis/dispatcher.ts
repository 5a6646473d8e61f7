// The Redis back end's worker: a BullMQ worker in every instance takes delivery jobs (at most
// `concurrency` at once), runs them with the function the app gives it, and records the outcome
// on the job: done (completed), retry later (moved to delayed until its backoff ends), dead
// (failed: the dead letters), released by a shutdown (delayed until now: another instance, or
// this one after its restart, takes it). A job whose instance died is found stalled after the
// lease by any other instance's worker and runs again: at least once, never lost.
import { DelayedError, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AttemptRecord, DeliveryWorker, Outcome, RunDelivery, RunLimits } from '../contract.js';
import { ShutdownAbortError } from '../../errors.js';
import { Runs } from '../runs.js';
import { closeConnection, redisConnection } from './connection.js';
import { type DeliveryJob, type DeliveryJobData, type DeliveryJobResult, QUEUE_NAME } from './jobs.js';
import { parkMs, promote, RedisFlows } from './flows.js';
import { HandlerSlots } from './slots.js';

export interface RedisDispatcherOptions {
  readonly url: string;
  /** The store's key prefix. */
  readonly prefix: string;
  readonly log: Logger;
  readonly concurrency: number;
  /** How long a job's lock holds without renewal; a dead instance's jobs run again after it. */
  readonly leaseMs: number;
  /** A job that stalls this many times (its instance died during each run) is failed. */
  readonly maxAttempts: number;
  readonly now?: () => number;
}

export class RedisDispatcher implements DeliveryWorker {
  readonly #o: RedisDispatcherOptions;
  readonly #now: () => number;
  readonly #runs: Runs<string>;
  #run: RunDelivery | undefined;
  #worker: Worker<DeliveryJobData, DeliveryJobResult | undefined, string> | undefined;
  #connection: Redis | undefined;
  #errors = 0;
  #stopping = false;
  /** What waits for a job's dead outcome to be stored (onDead), by job id. */
  readonly #whenFailed = new Map<string, (signal: AbortSignal) => Promise<void>>();
  /** Aborts the follow-ups (onDead) at the stop's deadline. */
  readonly #followUpStop = new AbortController();
  /** Resolved when a stop's deadline has passed: lingering handlers are no longer waited for. */
  readonly #gaveUp = resolvers();
  /** Follow-ups under way: a stop waits for them. */
  readonly #followUps = new Set<Promise<void>>();
  /** Slots of the handlers with a concurrency limit, kept in Redis for every instance. */
  #slots: HandlerSlots | undefined;
  /** Ordered and debounced jobs' bookkeeping, and the queue that promotes a line's next job. */
  #flows: RedisFlows | undefined;
  #queue: Queue | undefined;

  constructor(options: RedisDispatcherOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#runs = new Runs(options.log, () => this.#followUps.size > 0);
  }

  start(run: RunDelivery, limits: RunLimits = {}): void {
    if (this.#worker) return;
    this.#run = run;
    const o = this.#o;
    if (limits.concurrency && limits.concurrency.size > 0) this.#slots = new HandlerSlots(o, limits.concurrency);
    this.#connection = redisConnection(o.url, { failFast: false });
    this.#connection.on('error', () => {}); // the store logs Redis going away, once
    this.#flows = new RedisFlows(this.#connection, o.prefix);
    this.#queue = new Queue(QUEUE_NAME, { connection: this.#connection, prefix: o.prefix });
    this.#queue.on('error', () => {});
    this.#worker = new Worker<DeliveryJobData, DeliveryJobResult | undefined, string>(
      QUEUE_NAME,
      (job, token) => this.#process(job, token),
      {
        connection: this.#connection,
        prefix: o.prefix,
        concurrency: o.concurrency,
        lockDuration: o.leaseMs,
        stalledInterval: o.leaseMs,
        // A job whose instance died runs again; one that kills its instance every time is dead at
        // its MAX_ATTEMPTS-th stall (BullMQ fails a job on the stall after maxStalledCount).
        maxStalledCount: Math.max(0, o.maxAttempts - 1),
        // After a Redis error (out of memory, READONLY during a failover), BullMQ waits this long
        // before fetching again: its default, 15 s, delayed every delivery (and a shutdown) by as much.
        runRetryDelay: 1000,
        autorun: true,
      },
    );
    this.#worker.on('error', (err) => {
      if (this.#errors++ % 100 === 0) o.log.warn({ error: err.message }, 'the delivery worker cannot reach Redis; it keeps trying');
    });
    // An ordered job done or dead: the next of its line goes (BullMQ says so once it is stored).
    this.#worker.on('completed', (job) => this.#advance(job));
    // BullMQ says 'failed' once the job is stored failed (dead): then, and only then, its follow-up.
    this.#worker.on('failed', (job) => {
      if (job) this.#advance(job);
      const followUp = job?.id === undefined ? undefined : this.#whenFailed.get(job.id);
      if (!followUp) return;
      this.#whenFailed.delete(job!.id!);
      const p = followUp(this.#followUpStop.signal).catch(() => {}); // the runner's follow-ups log their own failures
      this.#followUps.add(p);
      void p.then(() => {
        this.#followUps.delete(p);
        this.#runs.notifyIdle();
      });
    });
    this.#worker.on('ready', () => {
      this.#errors = 0;
    });
    // Its connection's first failure (a wrong password in REDIS_URL) is reported by 'error'.
    this.#worker.waitUntilReady().catch(() => {});
  }

  abandon(): void {
    this.#runs.abandon();
  }

  get active(): number {
    return this.#runs.active;
  }

  idle(): Promise<void> {
    return this.#runs.idle();
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
    const deadline = Date.now() + deadlineMs;
    const stopFollowUps = () => this.#followUpStop.abort(new ShutdownAbortError());
    if (this.#runs.abandoned) {
      stopFollowUps();
      // Their locks lapse, and BullMQ's stalled check (another instance's, or ours after the
      // restart) runs them again, counted against maxStalledCount.
      await worker.close(true).catch(() => {});
    } else {
      const closing = worker.close().catch((err: unknown) => this.#o.log.warn({ err }, 'the delivery worker did not close cleanly'));
      await this.#runs.drain(
        () => closing,
        deadlineMs,
        () => {
          this.#gaveUp.resolve();
          stopFollowUps();
        },
      );
      // Follow-ups (onDead) get the same deadline as the runs.
      const timer = setTimeout(stopFollowUps, Math.max(0, deadline - Date.now()));
      await Promise.all(this.#followUps);
      clearTimeout(timer);
    }
    await this.#queue?.close().catch(() => {});
    if (this.#connection) await closeConnection(this.#connection);
    await this.#slots?.close();
    this.#runs.reportAtStop();
  }

  async #process(job: DeliveryJob, token: string | undefined): Promise<DeliveryJobResult> {
    const id = job.id!;
    if (this.#stopping) {
      // Fetched while the worker closes: back to the queue, due now, for another instance.
      await job.moveToDelayed(this.#now(), token);
      throw new DelayedError();
    }
    const flow = job.data.flow;
    let collapsed = job.data.collapsed;
    if (flow?.kind === 'order') {
      // Not the head of its key's line: parked until the head is done or dead (it is promoted
      // then), or until it looks again by itself. No attempt spent.
      const place = await this.#flows!.place(flow, id);
      if (place > 0) {
        // The longer it has waited, the longer it parks (up to 10 minutes): a long line behind a
        // failing head is not fetched round and round; a promotion wakes it at once anyway.
        await job.moveToDelayed(this.#now() + parkMs(place, this.#now() - job.timestamp), token);
        throw new DelayedError();
      }
    } else if (flow?.kind === 'debounce' && job.data.replays === 0) {
      // A later event of its key came within the period: finished as collapsed into that one's job.
      const taken = await this.#flows!.take(flow, id, job.data.event.seq);
      if (!taken.run) return { collapsedInto: taken.into };
      collapsed = Math.max(taken.collapsed, collapsed ?? 0);
    }
    const slots = this.#slots;
    if (!slots?.limits.has(job.data.handler)) return this.#processRun(job, token, collapsed);
    // One slot per fetch of the job (its lock token): a run taken up again elsewhere after a lost
    // lock waits for a slot of its own rather than sharing the first one's.
    const holder = `${id}:${token ?? ''}`;
    if (!(await slots.take(job.data.handler, holder))) {
      // Its handler is at its limit on some instance: back to the queue for a moment, no attempt
      // spent. The moment grows while the handler stays full (up to 2 s), so that a long queue of
      // its jobs is not fetched round and round.
      await job.moveToDelayed(this.#now() + slots.waitMs(job.data.handler), token);
      throw new DelayedError();
    }
    try {
      return await this.#processRun(job, token, collapsed);
    } finally {
      slots.release(job.data.handler, holder);
    }
  }

  /** After a job of an ordered line is stored done or dead: promotes the line's next. */
  #advance(job: DeliveryJob): void {
    const flow = job.data?.flow;
    if (flow?.kind !== 'order' || !this.#flows || !this.#queue) return;
    const queue = this.#queue;
    // If this fails (Redis away), the next job wakes by itself and finds the head finished.
    this.#flows
      .next(flow)
      .then((head) => (head ? promote(queue, [head]) : undefined))
      .catch(() => {});
  }

  async #processRun(job: DeliveryJob, token: string | undefined, collapsed?: number): Promise<DeliveryJobResult> {
    const data = job.data;
    const id = job.id!;
    const controller = this.#runs.start(id);
    let outcome: Outcome;
    let startedAt: number;
    let onRecorded: ((signal: AbortSignal) => Promise<void>) | undefined;
    try {
      const delivery = { id, handler: data.handler, attempt: data.attempt + 1, event: data.event, ...(collapsed ? { collapsed } : {}) };
      const run = await this.#run!(delivery, controller);
      ({ outcome, startedAt, onRecorded } = run);
      this.#runs.end(id, run.work, { handler: data.handler });
      // A handler that ignores its abort keeps its job (and its lock, and its slot) until it
      // returns: its retry must not run beside it. Not past the shutdown's deadline: the process
      // is about to exit, and the handler with it.
      // Whatever the outcome (dead too: its slot counts against HANDLER_CONCURRENCY), the job is
      // recorded once the handler has returned, or at the shutdown's deadline.
      if (run.work && controller.signal.aborted) await Promise.race([this.#runs.returned(id), this.#gaveUp.promise]);
    } catch (err) {
      this.#runs.end(id);
      throw err; // a fault of ours: BullMQ runs the job again a second later
    }
    const now = this.#now();
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
      ...(collapsed ? { collapsed } : {}),
    };
    // A finished run's record travels in the job's return value, written by BullMQ's own
    // completion (one round trip, not two); the other outcomes update the job's data first.
    // If these writes fail (Redis went away), BullMQ runs the job again a second later, or, when
    // even that cannot be written, once its lock runs out: at least once.
    if (outcome.kind === 'done' || outcome.kind === 'skipped') return { finished: entry } satisfies DeliveryJobResult;
    await job.updateData(next);
    switch (outcome.kind) {
      case 'dead':
        this.#whenFailed.delete(id);
        if (onRecorded) {
          // An entry whose job never reached 'failed' (Redis lost it meanwhile) must not stay for ever.
          if (this.#whenFailed.size >= 1000) this.#whenFailed.delete(this.#whenFailed.keys().next().value!);
          this.#whenFailed.set(id, onRecorded);
        }
        throw new UnrecoverableError(outcome.error.message);
      case 'retry':
      case 'released':
        await job.moveToDelayed(next.dueAt!, token);
        throw new DelayedError();
    }
  }
}

/** Promise.withResolvers, which Node 20 lacks. */
function resolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
