// The dispatcher: claims due deliveries under a lease, runs their handlers (at most
// HANDLER_CONCURRENCY at once, each bounded by HANDLER_TIMEOUT_MS through ctx.signal), and
// settles each run: done, retry later (backoff with full jitter), or dead.
//
// It is woken by the store when an accept makes deliveries (no polling on that path), and by a
// timer for the next retry. Per-entity ordering can come later inside claim(): the dispatcher
// only asks for "up to N due deliveries".
import type { ClaimedDelivery, DeliveryStore } from '../queue/deliveries.js';
import { runDelivery, type RunnerOptions, ShutdownAbortError, watchLingering } from './runner.js';

export { ShutdownAbortError };

/** What the app needs of a dispatcher, whatever the back end. */
export interface DeliveryWorker {
  start(): void;
  /** Runs in progress, lingering ones included. */
  readonly active: number;
  /** Resolves when nothing runs here. */
  idle(): Promise<void>;
  /** Stops taking deliveries; running ones get until `deadlineMs`, then are aborted and released. */
  stop(deadlineMs: number): Promise<void>;
  /**
   * For a stop after an uncaught exception: stop() then neither waits for the running handlers
   * nor releases them. They run again once their lease ends, their attempt counted, so a handler
   * that takes the process down each time reaches its dead letter instead of looping.
   */
  abandon(): void;
}

export interface DispatcherOptions extends RunnerOptions {
  readonly store: DeliveryStore;
  readonly concurrency: number;
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
}

interface Run {
  readonly delivery: ClaimedDelivery;
  readonly controller: AbortController;
  /** Settles when the run has been recorded. */
  readonly done: Promise<void>;
  /** The handler's own promise: it may outlive an abort it ignores. */
  work?: Promise<unknown>;
}

export class Dispatcher implements DeliveryWorker {
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
  #abandoned = false;
  /** A recovered delivery running alone. */
  #solo: number | undefined;
  #claiming = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #heartbeat: NodeJS.Timeout | undefined;
  #claimFailures = 0;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(options: DispatcherOptions) {
    this.#o = { observe: () => {}, blocked: () => {}, leaseMs: 15_000, prefetch: options.concurrency * 4, idlePollMs: 5000, missingHandler: 'dead', now: Date.now, random: Math.random, ...options };
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
    if (this.#abandoned) {
      if (this.#runs.size > 0) this.#o.log.warn({ running: this.#runs.size }, 'stopping without waiting for running handlers; they run again after their lease');
      return;
    }
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

  abandon(): void {
    this.#abandoned = true;
  }

  /**
   * Starts claimed deliveries while there are free slots. A recovered one (its last run was cut
   * short by the process stopping) runs alone: if it is what brings the process down, only its
   * attempts are counted by the crash, not those of the runs that would be beside it.
   */
  #fill(): void {
    while (!this.#stopping && this.#ready.length > 0 && this.active < this.#o.concurrency && this.#solo === undefined) {
      const next = this.#ready[0]!;
      if (next.recovered) {
        if (this.active > 0) return; // once the runs under way have ended
        this.#solo = next.id;
      }
      this.#start(this.#ready.shift()!);
    }
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
    watchLingering(
      work,
      this.#o.log.child({ handler: delivery.handler, deliveryId: delivery.id }),
      () => this.#lingering.set(delivery.id, work),
      () => {
        this.#lingering.delete(delivery.id);
        this.#notifyIdle();
        this.wake();
      },
    );
  }

  async #execute(run: Run): Promise<void> {
    const { delivery: d, controller } = run;
    let result: Awaited<ReturnType<typeof runDelivery>>;
    try {
      result = await runDelivery(this.#o, d, controller);
    } catch (err) {
      // runDelivery records every failure of the handler as an outcome; this is a fault of ours.
      // The lease runs out and the delivery runs again, its attempt counted: never lost, never for ever.
      this.#o.log.error({ err, handler: d.handler, deliveryId: d.id }, 'a run failed inside the dispatcher; it runs again once its lease ends');
      this.#runs.delete(d.id);
      if (this.#solo === d.id) this.#solo = undefined;
      this.#notifyIdle();
      this.wake();
      return;
    }
    const { outcome, startedAt, work } = result;
    run.work = work;
    // The slot is free now: the next claim and this outcome travel to the store together, in one
    // transaction. The delivery stays leased until its outcome is recorded, so it cannot run twice.
    this.#runs.delete(d.id);
    if (this.#solo === d.id) this.#solo = undefined;
    if (run.work && controller.signal.aborted) this.#linger(d, run.work);
    const settling = this.#o.store
      .settle([{ id: d.id, attempt: d.attempt, replays: d.replays, startedAt, outcome }])
      .catch((err: unknown) => {
        // The lease runs out and the delivery runs again: at least once, never lost.
        this.#o.log.error({ err, handler: d.handler, deliveryId: d.id }, 'could not record the outcome of a run; it will run again');
      });
    this.#settling.add(settling);
    this.wake();
    await settling;
    this.#settling.delete(settling);
    this.#notifyIdle();
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
