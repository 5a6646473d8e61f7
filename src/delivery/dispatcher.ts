// The dispatcher: claims due deliveries under a lease, runs their handlers (at most
// HANDLER_CONCURRENCY at once, each bounded by HANDLER_TIMEOUT_MS through ctx.signal), and
// settles each run: done, retry later (backoff with full jitter), or dead.
//
// It is woken by the store when an accept makes deliveries (no polling on that path), and by a
// timer for the next retry. Per-entity ordering can come later inside claim(): the dispatcher
// only asks for "up to N due deliveries".
import type { Logger } from 'pino';
import { HandlerTimeoutError, PermanentError } from '../errors.js';
import type { HubexEvent } from '../events/event.js';
import type { AttemptError, ClaimedDelivery, DeliveryStore, Outcome, StoredEvent } from '../queue/deliveries.js';
import { type BackoffOptions, retryDelay } from './backoff.js';
import { classify } from './classify.js';
import type { HandlerRegistry } from './registry.js';

export interface DispatcherOptions {
  readonly store: DeliveryStore;
  readonly registry: HandlerRegistry;
  /** The stored event as handlers see it. */
  readonly rebuild: (stored: StoredEvent) => HubexEvent;
  /** The HubEx client for a run: one shared client today, per tenant later. */
  readonly hubexFor: (event: HubexEvent) => unknown;
  readonly log: Logger;
  /** Told of every run's outcome (for the metrics). */
  readonly observe?: (run: { handler: string; outcome: Outcome['kind']; ms: number }) => void;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retry: BackoffOptions;
  /** How long a claim holds without a heartbeat. Default 15 s; renewed every third of it. */
  readonly leaseMs?: number;
  /**
   * With nothing due, look again this often anyway: another process (the command line replaying
   * dead letters) may have made deliveries due. Default 5 s. Accepts in this process wake it at once.
   */
  readonly idlePollMs?: number;
  /**
   * Deliveries claimed ahead of a free slot (leased, waiting in memory), so that a finished run is
   * followed at once, not one round trip to the store later. Default 4 x concurrency.
   */
  readonly prefetch?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** The abort reason a run gets when the router stops before it finished. */
export class ShutdownAbortError extends Error {
  override readonly name = 'ShutdownAbortError';
  constructor() {
    super('The router is stopping; the run was aborted and will run again after the restart.');
  }
}

interface Run {
  readonly delivery: ClaimedDelivery;
  readonly controller: AbortController;
  /** Settles when the run has been recorded. */
  readonly done: Promise<void>;
  /** The handler's own promise: it may outlive an abort it ignores. */
  work?: Promise<unknown>;
}

export class Dispatcher {
  readonly #o: Required<DispatcherOptions>;
  /** Runs in progress, and runs that were settled but whose handler ignored the abort (still busy). */
  readonly #runs = new Map<number, Run>();
  /** Claimed and leased, waiting for a slot. */
  #ready: ClaimedDelivery[] = [];
  readonly #lingering = new Map<number, Promise<unknown>>();
  /** Outcomes on their way to the store. */
  readonly #settling = new Set<Promise<void>>();
  #started = false;
  #stopping = false;
  #claiming = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #heartbeat: NodeJS.Timeout | undefined;
  #claimFailures = 0;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(options: DispatcherOptions) {
    this.#o = { observe: () => {}, leaseMs: 15_000, prefetch: options.concurrency * 4, idlePollMs: 5000, now: Date.now, random: Math.random, ...options };
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#o.store.onDue(() => this.wake());
    const every = Math.max(Math.floor(this.#o.leaseMs / 3), 100);
    this.#heartbeat = setInterval(() => void this.#renewLeases(), every);
    this.#heartbeat.unref();
    this.wake();
  }

  /** Looks for due deliveries now (accepts call this through the store). */
  wake(): void {
    if (!this.#started || this.#stopping) return;
    void this.#pump();
  }

  /** Runs in progress, lingering ones included. */
  get active(): number {
    return this.#runs.size + this.#lingering.size;
  }

  /** Resolves when nothing runs (for tests and the benchmark). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops claiming, gives running handlers until `deadlineMs` to finish, then aborts them through
   * ctx.signal and releases their deliveries (due again at once, the attempt not counted), so that
   * they run after the restart. Resolves when every run is recorded.
   */
  async stop(deadlineMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    // Claimed but not started: back to pending, as if never claimed.
    const waiting = this.#ready.splice(0).map((d) => d.id);
    await this.#o.store.releaseClaims(waiting).catch((err: unknown) => {
      this.#o.log.warn({ err }, 'could not release claimed deliveries; they run once their lease ends');
    });
    const settled = () => Promise.all([...this.#runs.values()].map((r) => r.done));
    if (this.#runs.size > 0) {
      this.#o.log.info({ running: this.#runs.size, deadlineMs }, 'waiting for running handlers');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), deadlineMs);
      });
      const outcome = await Promise.race([settled().then(() => 'done' as const), deadline]);
      clearTimeout(timer);
      if (outcome === 'deadline') {
        this.#o.log.warn({ running: this.#runs.size }, 'shutdown deadline reached: aborting running handlers; they run again after the restart');
        for (const r of this.#runs.values()) r.controller.abort(new ShutdownAbortError());
        await settled();
      }
    }
    await Promise.all(this.#settling);
    if (this.#lingering.size > 0) {
      this.#o.log.warn({ handlers: this.#lingering.size }, 'handlers that ignored their abort signal are still running at exit');
    }
  }

  /** Starts claimed deliveries while there are free slots. */
  #fill(): void {
    while (!this.#stopping && this.#ready.length > 0 && this.active < this.#o.concurrency) this.#start(this.#ready.shift()!);
  }

  async #pump(): Promise<void> {
    this.#fill();
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    const want = this.#o.concurrency + this.#o.prefetch - this.active - this.#ready.length;
    if (want <= 0 || this.#stopping) return;
    this.#claiming = true;
    this.#again = false;
    try {
      const { deliveries, nextDueAt } = await this.#o.store.claim(want, this.#o.leaseMs, [...this.#lingering.keys()]);
      this.#claimFailures = 0;
      if (this.#stopping) {
        await this.#o.store.releaseClaims(deliveries.map((d) => d.id));
        return;
      }
      this.#ready.push(...deliveries);
      this.#fill();
      if (deliveries.length === want) this.#again = true; // there may be more
      else this.#schedule(nextDueAt);
    } catch (err) {
      // The store is unavailable: try again later (what is stored waits, nothing is lost).
      if (this.#claimFailures++ === 0) this.#o.log.warn({ err }, 'cannot claim deliveries; retrying');
      this.#schedule(this.#o.now() + Math.min(1000 * this.#claimFailures, 10_000));
    } finally {
      this.#claiming = false;
      if (this.#again && !this.#stopping) queueMicrotask(() => void this.#pump());
      else this.#notifyIdle();
    }
  }

  #schedule(next: number | null): void {
    if (this.#stopping) return;
    const now = this.#o.now();
    const at = Math.min(next ?? Number.POSITIVE_INFINITY, now + this.#o.idlePollMs);
    // Not before 5 ms from now (a due delivery held back by a full house needs no busy loop),
    // not later than a minute (the clock may jump; a minute's check costs nothing).
    const when = Math.min(Math.max(at, now + 5), now + 60_000);
    if (this.#timer && this.#timerAt <= when) return;
    clearTimeout(this.#timer);
    this.#timerAt = when;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.wake();
    }, when - now);
    this.#timer.unref();
  }

  #start(delivery: ClaimedDelivery): void {
    const run: Run = { delivery, controller: new AbortController(), done: Promise.resolve() };
    this.#runs.set(delivery.id, run);
    (run as { done: Promise<void> }).done = this.#execute(run);
  }

  /** A handler that ignored its abort keeps its slot, and its delivery is not claimed, until it returns. */
  #linger(delivery: ClaimedDelivery, work: Promise<unknown>): void {
    let finished = false;
    void work.then(
      () => (finished = true),
      () => (finished = true),
    );
    // Give it a turn to react to the abort before calling it lingering.
    setImmediate(() => {
      if (finished) return;
      this.#o.log.warn(
        { handler: delivery.handler, deliveryId: delivery.id },
        'the handler ignored its abort signal; its slot stays taken until it returns',
      );
      const settle = () => {
        this.#lingering.delete(delivery.id);
        this.#notifyIdle();
        this.wake();
      };
      this.#lingering.set(delivery.id, work);
      void work.then(settle, settle);
    });
  }

  async #execute(run: Run): Promise<void> {
    const { delivery: d, controller } = run;
    const o = this.#o;
    const startedAt = o.now();
    const log = o.log.child({ handler: d.handler, deliveryId: d.id, eventId: d.event.id, attempt: d.attempt });
    let outcome: Outcome;
    try {
      const handler = o.registry.get(d.handler);
      if (!handler) {
        throw new PermanentError(
          `No handler named "${d.handler}" is loaded now; load it again and replay this delivery.`,
        );
      }
      const event = o.rebuild(d.event);
      if (handler.where && !(await handler.where(event))) {
        outcome = { kind: 'skipped' };
      } else {
        const timer = setTimeout(() => controller.abort(new HandlerTimeoutError(o.timeoutMs)), o.timeoutMs);
        try {
          const ctx = { event, hubex: o.hubexFor(event), log, signal: controller.signal, attempt: d.attempt, deliveryId: d.id };
          run.work = Promise.resolve().then(() => handler.handle(ctx));
          await untilAborted(run.work, controller.signal);
        } finally {
          clearTimeout(timer);
        }
        outcome = { kind: 'done' };
      }
    } catch (err) {
      outcome = this.#failure(err, d, controller.signal, log);
    }
    const ms = o.now() - startedAt;
    o.observe({ handler: d.handler, outcome: outcome.kind, ms });
    if (outcome.kind === 'done' || outcome.kind === 'skipped') log.debug({ ms, outcome: outcome.kind }, 'delivery finished');
    // The slot is free now: the next claim and this outcome travel to the store together, in one
    // transaction. The delivery stays leased until its outcome is recorded, so it cannot run twice.
    this.#runs.delete(d.id);
    if (run.work && controller.signal.aborted) this.#linger(d, run.work);
    const settling = o.store
      .settle([{ id: d.id, attempt: d.attempt, replays: d.replays, startedAt, outcome }])
      .catch((err: unknown) => {
        // The lease runs out and the delivery runs again: at least once, never lost.
        log.error({ err }, 'could not record the outcome of a run; it will run again');
      });
    this.#settling.add(settling);
    this.wake();
    await settling;
    this.#settling.delete(settling);
    this.#notifyIdle();
  }

  #failure(err: unknown, d: ClaimedDelivery, signal: AbortSignal, log: Logger): Outcome {
    const reason = signal.aborted ? signal.reason : undefined;
    if (reason instanceof ShutdownAbortError) {
      log.info('aborted by the shutdown; released to run after the restart');
      return { kind: 'released', error: errorOf(reason) };
    }
    // A timeout: the handler may have rejected with its own AbortError; the timeout is the story.
    const f = classify(reason instanceof HandlerTimeoutError ? reason : err);
    const error: AttemptError = { message: f.message, errorClass: f.errorClass, traceId: f.traceId };
    if (!f.retry || d.attempt >= this.#o.maxAttempts) {
      const why = f.retry ? `dead after ${d.attempt} attempts` : 'dead: a retry cannot help';
      log.error({ error: error.message, errorClass: error.errorClass, traceId: error.traceId }, `delivery ${why}`);
      return { kind: 'dead', error };
    }
    const delay = retryDelay(d.attempt, this.#o.retry, this.#o.random, f.notBeforeMs ?? 0);
    log.warn({ error: error.message, errorClass: error.errorClass, traceId: error.traceId, retryInMs: delay }, 'delivery failed; retrying');
    return { kind: 'retry', runAt: this.#o.now() + delay, error };
  }

  async #renewLeases(): Promise<void> {
    const ids = [...this.#runs.keys(), ...this.#lingering.keys(), ...this.#ready.map((d) => d.id)];
    try {
      await this.#o.store.extendLeases(ids, this.#o.leaseMs);
    } catch (err) {
      this.#o.log.warn({ err }, 'could not renew delivery leases');
    }
  }

  #isIdle(): boolean {
    return this.active === 0 && this.#ready.length === 0 && this.#settling.size === 0 && !this.#claiming;
  }

  #notifyIdle(): void {
    if (!this.#isIdle()) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

function errorOf(err: Error): AttemptError {
  return { message: err.message, errorClass: err.name };
}

/** Resolves or rejects with `work`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
