// A job run now and then every interval, never two at once: the reconciler's polls and the
// watchdog's rounds. stop() aborts a run under way (through `signal`) and waits for it.
export class Every {
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(
    private readonly intervalMs: number,
    /** Its own errors are its business (logged there): a rejection only ends that run. */
    private readonly run: () => Promise<unknown>,
  ) {}

  /** Aborted by stop(): pass it to what a run waits on. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.run()
        .catch(() => undefined)
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#timer = setTimeout(tick, this.intervalMs).unref();
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort(new Error('the router is stopping'));
    await this.#running;
  }
}
