// What the SQLite back end's dispatcher asks of its store: the delivery state machine. A delivery
// is claimed under a lease (renewed while it runs), then settled with its run's outcome; one whose
// lease runs out (its process died) is claimed again, told apart as recovered.
import type { Outcome, StoredEvent } from '../contract.js';

export interface ClaimedDelivery {
  readonly id: number;
  readonly handler: string;
  /** This run's number: 1 on the first run, counted again from 1 after a replay. */
  readonly attempt: number;
  readonly replays: number;
  /** Its last run was cut short (the lease ran out: the process stopped during it). */
  readonly recovered: boolean;
  /** A debounced delivery: earlier events of its key collapsed into it. */
  readonly collapsed?: number;
  readonly event: StoredEvent;
}

export interface Settlement {
  readonly id: number;
  readonly attempt: number;
  readonly replays: number;
  readonly startedAt: number;
  readonly outcome: Outcome;
}

export interface ClaimStore {
  /**
   * Claims up to `limit` due deliveries (pending and due, or running with a lease that ran out),
   * oldest due first, and leases them for `leaseMs`. `exclude` lists deliveries the caller holds
   * already; `excludeHandlers`, handlers whose runs are at their concurrency. `nextDueAt` is when
   * the next one not claimed now falls due (null: none), among those not excluded.
   */
  claim(
    limit: number,
    leaseMs: number,
    exclude?: readonly number[],
    excludeHandlers?: readonly string[],
  ): Promise<{ deliveries: ClaimedDelivery[]; nextDueAt: number | null }>;
  /** Records runs' outcomes (each with its attempt in the history). */
  settle(settlements: readonly Settlement[]): Promise<void>;
  /** Puts claimed deliveries that never started back to pending, due now, the claim not counted. */
  releaseClaims(ids: readonly number[]): Promise<void>;
  /** Extends the leases of runs still going. */
  extendLeases(ids: readonly number[], leaseMs: number): Promise<void>;
  /** Called when new deliveries may be due (an accept made some, or a replay). */
  onDue(listener: () => void): void;
}
