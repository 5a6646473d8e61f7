// Per-handler concurrency for the SQLite worker (one instance holds the store, so counting here
// is counting everywhere): how many runs each limited handler has, lingering ones included, and
// what a claim may bring for it.
export class HandlerLimits {
  readonly #limits: ReadonlyMap<string, number>;
  readonly #running = new Map<string, number>();

  constructor(limits: ReadonlyMap<string, number> = new Map()) {
    this.#limits = limits;
  }

  get any(): boolean {
    return this.#limits.size > 0;
  }

  started(handler: string): void {
    this.#running.set(handler, (this.#running.get(handler) ?? 0) + 1);
  }

  /** Its slot is free (the run ended, or a lingering one returned). */
  freed(handler: string): void {
    const n = (this.#running.get(handler) ?? 1) - 1;
    if (n > 0) this.#running.set(handler, n);
    else this.#running.delete(handler);
  }

  /** Runs the handler may start now (Infinity without a limit). */
  room(handler: string): number {
    const limit = this.#limits.get(handler);
    return limit === undefined ? Number.POSITIVE_INFINITY : limit - (this.#running.get(handler) ?? 0);
  }

  /** Limited handlers with no room left once `ready` (claimed, waiting) starts: a claim takes none of theirs. */
  full(ready: readonly { readonly handler: string }[]): string[] {
    return [...this.#limits.keys()].filter((h) => this.room(h) - waiting(ready, h) <= 0);
  }

  /**
   * Splits a claim into what the limits leave room for (besides `ready`) and what goes back. A
   * recovered delivery (its last run cut short) is always kept: given back it would lose that mark,
   * and with it the guard against a handler that takes the process down on every run.
   */
  split<D extends { readonly id: number; readonly handler: string; readonly recovered?: boolean }>(
    claimed: D[],
    ready: readonly D[],
  ): { keep: D[]; back: number[] } {
    if (!this.any) return { keep: claimed, back: [] };
    const room = new Map<string, number>();
    const keep: D[] = [];
    const back: number[] = [];
    for (const d of claimed) {
      if (!this.#limits.has(d.handler) || d.recovered) {
        keep.push(d);
        if (d.recovered) room.set(d.handler, (room.get(d.handler) ?? this.room(d.handler) - waiting(ready, d.handler)) - 1);
        continue;
      }
      const left = room.get(d.handler) ?? this.room(d.handler) - waiting(ready, d.handler);
      if (left > 0) keep.push(d);
      else back.push(d.id);
      room.set(d.handler, left - 1);
    }
    return { keep, back };
  }
}

const waiting = (ready: readonly { readonly handler: string }[], handler: string): number => {
  let n = 0;
  for (const d of ready) if (d.handler === handler) n++;
  return n;
};
