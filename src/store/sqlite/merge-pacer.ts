// When the store worker merges ids into event_ids (writer.indexIds): work that can wait, since the
// ids are found in memory meanwhile, so it is done when it costs the answers least.
// - Idle (nothing accepted for idleMs): slice after slice, until nothing waits.
// - Light load (commits of a few calls): each accepted event earns `pace` ids of merge, and a
//   slice runs once a slice's worth is earned; at 1,000 events/s about 6 slices a second.
// - Saturated (commits of busyCalls calls or more, on average: requests queue up behind each
//   commit): nothing is merged, and the ids wait for the next idle moment (a burst of HubEx calls
//   is over in seconds), up to four times idMergeAt of them (mergeState 'behind'). From there on
//   `pace` again, whatever the load and however many events a commit holds: more ids merged than
//   accepted, so that memory stays bounded under any sustained load.
// Calls, not events, tell saturation: a steady trickle of large batches is light load. Merging
// during saturation would slow every commit, more so the larger the table.

export type MergeState = 'idle' | 'due' | 'behind';

export interface MergePacerOptions {
  /** Ids one slice writes (writer.mergeSlice). */
  readonly slice: number;
  /** Ids of merge earned per accepted event. Default 1.5. */
  readonly pace?: number;
  /** Quiet time after the last accept that counts as idle. Default 100 ms. */
  readonly idleMs?: number;
  /** Accept calls per commit, on average, from which the store counts as saturated. Default 4. */
  readonly busyCalls?: number;
}

export class MergePacer {
  readonly #slice: number;
  readonly #pace: number;
  readonly #idleMs: number;
  readonly #busyCalls: number;
  #credit = 0;
  #calls = 1; // accept calls per commit, a moving average over about 20 commits
  #lastAccept = Number.NEGATIVE_INFINITY;

  constructor(opts: MergePacerOptions) {
    this.#slice = opts.slice;
    this.#pace = opts.pace ?? 1.5;
    this.#idleMs = opts.idleMs ?? 100;
    this.#busyCalls = opts.busyCalls ?? 4;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** Whether commits hold as many calls as under saturation. */
  get busy(): boolean {
    return this.#calls >= this.#busyCalls;
  }

  /**
   * After a commit of `calls` accept calls holding `events` events (at `now`, ms): how many slices
   * to run now. At most four under light load; when behind, at least this commit's pace.
   */
  afterAccepts(events: number, calls: number, state: MergeState, now: number): number {
    this.#lastAccept = now;
    this.#calls += (calls - this.#calls) / 20;
    if (state === 'idle') return 0;
    const earned = this.#pace * events;
    if (state === 'behind') this.#credit = Math.min(this.#credit + earned, 4 * this.#slice + earned);
    else if (!this.busy) this.#credit = Math.min(this.#credit + earned, 4 * this.#slice);
    const slices = Math.floor(this.#credit / this.#slice);
    this.#credit -= slices * this.#slice;
    return slices;
  }

  /** Ms until the store counts as idle (0: it is). */
  untilIdle(now: number): number {
    return Math.max(0, this.#lastAccept + this.#idleMs - now);
  }
}
