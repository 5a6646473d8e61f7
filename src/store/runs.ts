// The runs a worker has under way, and how it stops: written once for both back ends' workers.
// A run aborted (by its timeout or the shutdown) whose handler ignores the signal lingers: it keeps
// its slot, and its delivery is not taken again, until the handler returns.
import type { Logger } from 'pino';
import { ShutdownAbortError } from '../errors.js';

export class Runs<Id> {
  readonly #running = new Map<Id, AbortController>();
  readonly #lingering = new Map<Id, Promise<unknown>>();
  readonly #idleWaiters: (() => void)[] = [];
  #abandoned = false;

  /** `busy`: whether the worker has other work under way (claims, outcomes on their way). */
  constructor(
    private readonly log: Logger,
    private readonly busy: () => boolean = () => false,
  ) {}

  /** Runs in progress, lingering ones included. */
  get active(): number {
    return this.#running.size + this.#lingering.size;
  }

  get running(): number {
    return this.#running.size;
  }

  /** Every run's id, lingering ones included: what must stay leased. */
  ids(): Id[] {
    return [...this.#running.keys(), ...this.#lingering.keys()];
  }

  lingeringIds(): Id[] {
    return [...this.#lingering.keys()];
  }

  get abandoned(): boolean {
    return this.#abandoned;
  }

  start(id: Id): AbortController {
    const controller = new AbortController();
    this.#running.set(id, controller);
    return controller;
  }

  /**
   * The run is over. If it was aborted (its timeout, the shutdown) and its handler's promise
   * (`work`) has not settled, it lingers from this moment until it does: it keeps its slot, its
   * lease, and its delivery is not taken again.
   */
  end(
    id: Id,
    work?: Promise<unknown>,
    o: { readonly handler?: string; readonly onReturned?: () => void; readonly onFreed?: () => void } = {},
  ): void {
    const controller = this.#running.get(id);
    this.#running.delete(id);
    if (!(work && controller?.signal.aborted)) o.onFreed?.();
    if (work && controller?.signal.aborted) {
      this.#lingering.set(id, work);
      let returned = false;
      const done = () => {
        returned = true;
        if (this.#lingering.get(id) === work) this.#lingering.delete(id);
        o.onFreed?.();
        o.onReturned?.();
        this.notifyIdle();
      };
      void work.then(done, done);
      // One turn to react to the abort before it is called lingering in the log.
      setImmediate(() => {
        if (!returned)
          this.log.warn(
            { handler: o.handler, deliveryId: id },
            'the handler ignored its abort signal; its slot stays taken until it returns',
          );
      });
    }
    this.notifyIdle();
  }

  /** Settles when the handler of a lingering run returns, or at once when `id` does not linger. */
  returned(id: Id): Promise<unknown> {
    return (this.#lingering.get(id) ?? Promise.resolve()).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Resolves when nothing runs and the worker is not busy. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  notifyIdle(): void {
    if (!this.#isIdle()) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  abandon(): void {
    this.#abandoned = true;
  }

  /**
   * The shutdown's wait: until `settled` (every run recorded, or the worker closed), at most
   * `deadlineMs`; then the runs still going are aborted through their signal (their outcome is
   * 'released': due again at once, the attempt not counted) and `settled` is awaited.
   */
  async drain(settled: () => Promise<unknown>, deadlineMs: number, onDeadline?: () => void): Promise<void> {
    if (this.#running.size > 0) this.log.info({ running: this.#running.size, deadlineMs }, 'waiting for running handlers');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([settled().then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      this.log.warn(
        { running: this.#running.size },
        'shutdown deadline reached: aborting running handlers; they run again after the restart',
      );
      for (const c of this.#running.values()) c.abort(new ShutdownAbortError());
      onDeadline?.();
      await settled();
    }
  }

  /** Says what a stop leaves behind. */
  reportAtStop(): void {
    if (this.#abandoned && this.#running.size > 0) {
      this.log.warn({ running: this.#running.size }, 'stopping without waiting for running handlers; they run again after their lease');
    }
    if (this.#lingering.size > 0) {
      this.log.warn({ handlers: this.#lingering.size }, 'handlers that ignored their abort signal are still running at exit');
    }
  }

  #isIdle(): boolean {
    return this.active === 0 && !this.busy();
  }
}
