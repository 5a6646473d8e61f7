// The SQLite back end's worker: claims due deliveries under a lease, runs them with the function the
// app gives it (at most `concurrency` at once), and settles each run's outcome. It is woken by the
// store when an accept or a replay makes deliveries due (no polling on that path), and by a timer
// for the next retry; with nothing due it still looks every idlePollMs, for deliveries another
// process (the command line) made due.
import type { Logger } from 'pino';
import type { DeliveryWorker, RunDelivery, RunLimits } from '../contract.js';
import { ShutdownAbortError } from '../../errors.js';
import { Runs } from '../runs.js';
import type { ClaimedDelivery, ClaimStore } from './claims.js';
import { HandlerLimits } from './handler-limits.js';

export interface SqliteDispatcherOptions {
  readonly store: ClaimStore;
  readonly log: Logger;
  readonly concurrency: number;
  /** How long a claim holds without a heartbeat. Default 15 s; renewed every third of it. */
  readonly leaseMs?: number;
  /** With nothing due, look again this often anyway. Default 5 s. */
  readonly idlePollMs?: number;
  /**
   * Deliveries claimed ahead of a free slot (leased, waiting in memory), so that a finished run is
   * followed at once, not one round trip to the store later. Default 4 x concurrency.
   */
  readonly prefetch?: number;
  readonly now?: () => number;
}

export class SqliteDispatcher implements DeliveryWorker {
  readonly #o: Required<SqliteDispatcherOptions>;
  readonly #runs: Runs<number>;
  /** The recording of each run's outcome, by delivery: a run's slot is free before it is recorded. */
  readonly #recorded = new Map<number, Promise<void>>();
  /** Claimed and leased, waiting for a slot. */
  #ready: ClaimedDelivery[] = [];
  /** Outcomes on their way to the store. */
  readonly #settling = new Set<Promise<void>>();
  /** Aborts the follow-ups (onDead) at the stop's deadline. */
  readonly #followUpStop = new AbortController();
  #run: RunDelivery | undefined;
  #stopping = false;
  /** A recovered delivery running alone. */
  #solo: number | undefined;
  #claiming = false;
  /** The claim under way (its deliveries are given back when a stop came meanwhile): a stop waits for it. */
  #claim: Promise<void> = Promise.resolve();
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #heartbeat: NodeJS.Timeout | undefined;
  #claimFailures = 0;
  /** Per-handler concurrency. */
  #limits = new HandlerLimits();

  constructor(options: SqliteDispatcherOptions) {
    this.#o = { leaseMs: 15_000, prefetch: options.concurrency * 4, idlePollMs: 5000, now: Date.now, ...options };
    this.#runs = new Runs(options.log, () => this.#ready.length > 0 || this.#settling.size > 0 || this.#claiming);
  }

  start(run: RunDelivery, limits: RunLimits = {}): void {
    if (this.#run) return;
    this.#run = run;
    this.#limits = new HandlerLimits(limits.concurrency);
    this.#o.store.onDue(() => this.wake());
    const every = Math.max(Math.floor(this.#o.leaseMs / 3), 100);
    this.#heartbeat = setInterval(() => void this.#renewLeases(), every);
    this.#heartbeat.unref();
    this.wake();
  }

  /** Looks for due deliveries now (accepts call this through the store). */
  wake(): void {
    if (!this.#run || this.#stopping) return;
    void this.#pump();
  }

  get active(): number {
    return this.#runs.active;
  }

  idle(): Promise<void> {
    return this.#runs.idle();
  }

  abandon(): void {
    this.#runs.abandon();
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
    // A claim under way gives back what it brings (it sees the stop), before the store closes.
    await this.#claim;
    // Claimed but not started: back to pending, as if never claimed.
    const waiting = this.#ready.splice(0).map((d) => d.id);
    await this.#o.store.releaseClaims(waiting).catch((err: unknown) => {
      this.#o.log.warn({ err }, 'could not release claimed deliveries; they run once their lease ends');
    });
    const deadline = Date.now() + deadlineMs;
    const stopFollowUps = () => this.#followUpStop.abort(new ShutdownAbortError());
    if (this.#runs.abandoned) stopFollowUps();
    else {
      await this.#runs.drain(() => Promise.all(this.#recorded.values()), deadlineMs, stopFollowUps);
      // Follow-ups (onDead) get the same deadline as the runs.
      const timer = setTimeout(stopFollowUps, Math.max(0, deadline - Date.now()));
      await Promise.all(this.#settling);
      clearTimeout(timer);
    }
    this.#runs.reportAtStop();
  }

  /**
   * Starts claimed deliveries while there are free slots. A recovered one (its last run was cut
   * short by the process stopping) runs alone: if it is what brings the process down, only its
   * attempts are counted by the crash, not those of the runs that would be beside it.
   */
  #fill(): void {
    while (!this.#stopping && this.#ready.length > 0 && this.active < this.#o.concurrency && this.#solo === undefined) {
      // The oldest whose handler is under its own limit (a handler at its limit waits, the others go).
      const i = this.#limits.any ? this.#ready.findIndex((d) => this.#limits.room(d.handler) > 0) : 0;
      if (i < 0) return;
      const next = this.#ready[i]!;
      if (next.recovered) {
        // Once the runs under way have ended. Lingering ones (aborted, their handler not
        // returning) do not count: they may never end, and they are not what crashed.
        if (this.#runs.running > 0) return;
        this.#solo = next.id;
      }
      this.#ready.splice(i, 1);
      this.#start(next);
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
    let claimed!: () => void;
    this.#claim = new Promise<void>((resolve) => (claimed = resolve));
    try {
      // Never its own: a delivery whose lease lapsed (the loop was blocked, renewals failed) is
      // still this instance's while it waits to start, runs or lingers. (Once its run has ended,
      // its outcome is on its way to the store ahead of this claim.)
      const own = [...this.#runs.ids(), ...this.#ready.map((d) => d.id)];
      const claimed = await this.#o.store.claim(want, this.#o.leaseMs, own, this.#limits.full(this.#ready));
      const { nextDueAt } = claimed;
      const deliveries = await this.#withinLimits(claimed.deliveries);
      this.#claimFailures = 0;
      if (this.#stopping) {
        await this.#o.store.releaseClaims(deliveries.map((d) => d.id));
        return;
      }
      this.#ready.push(...deliveries);
      this.#fill();
      if (deliveries.length === want)
        this.#again = true; // there may be more
      else this.#schedule(nextDueAt);
    } catch (err) {
      // The store is unavailable: try again later (what is stored waits, nothing is lost).
      if (this.#claimFailures++ === 0) this.#o.log.warn({ err }, 'cannot claim deliveries; retrying');
      this.#schedule(this.#o.now() + Math.min(1000 * this.#claimFailures, 10_000));
    } finally {
      claimed();
      this.#claiming = false;
      if (this.#again && !this.#stopping) queueMicrotask(() => void this.#pump());
      else this.#runs.notifyIdle();
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

  /** Keeps what the handlers' limits leave room for; the rest go back to pending, no attempt spent. */
  async #withinLimits(claimed: ClaimedDelivery[]): Promise<ClaimedDelivery[]> {
    const { keep, back } = this.#limits.split(claimed, this.#ready);
    if (back.length > 0) {
      await this.#o.store.releaseClaims(back).catch((err: unknown) => {
        this.#o.log.warn({ err }, "could not give back deliveries over their handler's limit; they run once their lease ends");
      });
    }
    return keep;
  }

  #start(d: ClaimedDelivery): void {
    this.#limits.started(d.handler);
    const controller = this.#runs.start(d.id);
    this.#recorded.set(d.id, this.#execute(d, controller));
  }

  async #execute(d: ClaimedDelivery, controller: AbortController): Promise<void> {
    let result: Awaited<ReturnType<RunDelivery>>;
    try {
      result = await this.#run!(d, controller);
    } catch (err) {
      // The run function records every failure of the handler as an outcome; this is a fault of
      // ours. The lease runs out and the delivery runs again, its attempt counted: never lost, never for ever.
      this.#o.log.error(
        { err, handler: d.handler, deliveryId: d.id },
        'a run failed inside the dispatcher; it runs again once its lease ends',
      );
      this.#recorded.delete(d.id);
      this.#finish(d.id, undefined, d.handler);
      return;
    }
    const { outcome, startedAt, work } = result;
    // The outcome goes to the store first, then the slot is freed and the next claim follows it
    // (in the same transaction, in this order): a claim never sees the delivery still running
    // with its lease lapsed (a loaded machine), so it cannot run twice.
    const settling = this.#o.store
      .settle([{ id: d.id, attempt: d.attempt, replays: d.replays, startedAt, outcome }])
      .then(() => {
        if (result.onRecorded) this.#followUp(result.onRecorded);
      })
      .catch((err: unknown) => {
        // The lease runs out and the delivery runs again: at least once, never lost.
        this.#o.log.error({ err, handler: d.handler, deliveryId: d.id }, 'could not record the outcome of a run; it will run again');
      });
    this.#settling.add(settling);
    this.#finish(d.id, work, d.handler);
    await settling;
    this.#settling.delete(settling);
    this.#recorded.delete(d.id);
    this.#runs.notifyIdle();
  }

  /** What runs after an outcome is stored (onDead): counted as busy, so that a stop waits for it, up to its deadline. */
  #followUp(work: (signal: AbortSignal) => Promise<void>): void {
    const p = work(this.#followUpStop.signal).catch(() => {}); // the runner's follow-ups log their own failures
    this.#settling.add(p);
    void p.then(() => {
      this.#settling.delete(p);
      this.#runs.notifyIdle();
    });
  }

  #finish(id: number, work?: Promise<unknown>, handler?: string): void {
    if (this.#solo === id) this.#solo = undefined;
    this.#runs.end(id, work, {
      ...(handler ? { handler } : {}),
      onReturned: () => this.wake(),
      onFreed: () => {
        if (handler !== undefined) this.#limits.freed(handler);
      },
    });
    this.wake();
  }

  async #renewLeases(): Promise<void> {
    const ids = [...this.#runs.ids(), ...this.#ready.map((d) => d.id)];
    if (ids.length === 0) return;
    try {
      await this.#o.store.extendLeases(ids, this.#o.leaseMs);
    } catch (err) {
      this.#o.log.warn({ err }, 'could not renew delivery leases');
    }
  }
}
