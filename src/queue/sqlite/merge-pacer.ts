// When the store worker merges ids into event_ids (writer.indexIds): work that can wait, since the
// ids are found in memory meanwhile, so it is done when it costs the answers least.
// - Idle (nothing accepted for idleMs): slice after slice, until nothing waits.
// - Light load (commits of a few events): each accepted event earns `pace` ids of merge, and a
//   slice runs once a slice's worth is earned; at 1,000 events/s about 6 slices a second.
// - Saturated (commits of busyBatch events or more, on average): nothing is merged, and the ids
//   wait for the next idle moment (a burst of HubEx calls is over in seconds), up to four times
//   idMergeAt of them (mergeState 'behind'). From there on `pace` again, whatever the load: more
//   than one id per event, so that memory stays bounded under any sustained load.
// Measured (bench/RESULTS.md): merging at the pace of the accepts during saturation cost 10 to
// 15% of the throughput once the table held 500,000 events or more.

export type MergeState = 'idle' | 'due' | 'behind';

export interface MergePacerOptions {
  /** Ids one slice writes (writer.mergeSlice). */
  readonly slice: number;
  /** Ids of merge earned per accepted event. Default 1.5. */
  readonly pace?: number;
  /** Quiet time after the last accept that counts as idle. Default 100 ms. */
  readonly idleMs?: number;
  /** Events per commit, on average, from which the store counts as saturated. Default 4. */
  readonly busyBatch?: number;
}

export class MergePacer {
  readonly #slice: number;
  readonly #pace: number;
  readonly #idleMs: number;
  readonly #busyBatch: number;
  #credit = 0;
  #batch = 1; // events per commit, a moving average over about 20 commits
  #lastAccept = Number.NEGATIVE_INFINITY;

  constructor(opts: MergePacerOptions) {
    this.#slice = opts.slice;
    this.#pace = opts.pace ?? 1.5;
    this.#idleMs = opts.idleMs ?? 100;
    this.#busyBatch = opts.busyBatch ?? 4;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** Whether commits are as large as under saturation. */
  get busy(): boolean {
    return this.#batch >= this.#busyBatch;
  }

  /** After a commit that accepted `events` (at `now`, ms): how many slices to run now (at most 4). */
  afterAccepts(events: number, state: MergeState, now: number): number {
    this.#lastAccept = now;
    this.#batch += (events - this.#batch) / 20;
    if (state === 'idle') return 0;
    if (state === 'behind' || !this.busy) this.#credit = Math.min(this.#credit + this.#pace * events, 4 * this.#slice);
    const slices = Math.floor(this.#credit / this.#slice);
    this.#credit -= slices * this.#slice;
    return slices;
  }

  /** Ms until the store counts as idle (0: it is). */
  untilIdle(now: number): number {
    return Math.max(0, this.#lastAccept + this.#idleMs - now);
  }
}
