// Group commit: the writes submitted during one event-loop turn are flushed together, in one
// transaction, and each caller's promise settles only after that flush.

export type Flush<In, Out> = (items: readonly In[]) => Out[];

export class GroupCommit<In, Out> {
  #pending: { item: In; resolve: (out: Out) => void; reject: (err: unknown) => void }[] = [];
  #scheduled = false;

  constructor(private readonly flush: Flush<In, Out>) {}

  submit(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate runs after the poll phase, so every request read in this turn joins the batch.
        setImmediate(() => this.flushNow());
      }
    });
  }

  /** Flushes what is pending now (also used on close). */
  flushNow(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let results: Out[];
    try {
      results = this.flush(batch.map((p) => p.item));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  get size(): number {
    return this.#pending.length;
  }
}
