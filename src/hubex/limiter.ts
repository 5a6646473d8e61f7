// The cap on HubEx calls in flight, so that a burst of events cannot flood the tenant: a call
// takes a place or waits its turn, and a waiting call can be aborted.

export class Limiter {
  readonly #max: number;
  #inFlight = 0;
  readonly #queue: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place at once when one is free, without a wait. */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.#max) return false;
    this.#inFlight++;
    return true;
  }

  /** Waits for a free place; an abort leaves the queue and rejects with the signal's reason. */
  async acquire(signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', abort);
        this.#inFlight++;
        resolve();
      };
      const abort = () => {
        const i = this.#queue.indexOf(go);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.#queue.push(go);
    });
  }

  /** Gives a place back, to the first call waiting if there is one. */
  release(): void {
    this.#inFlight--;
    this.#queue.shift()?.();
  }
}
