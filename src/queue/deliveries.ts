// The delivery store: one delivery per (event, handler), made in the accept's transaction, claimed
// under a lease, settled after each run. The dispatcher and the replay module talk only to this
// interface, so that the SQLite back end and a Redis one are interchangeable.

export type DeliveryStatus = 'pending' | 'running' | 'done' | 'dead';
/** A delivery's id: a number in SQLite; on Redis the BullMQ job id, `eventId@handler`. */
export type DeliveryId = number | string;
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'running', 'done', 'dead'];

/** An event as stored: the dispatcher rebuilds the HubexEvent from `raw`. */
export interface StoredEvent {
  readonly seq: number;
  readonly id: string;
  readonly name: string;
  readonly receivedAt: number;
  readonly raw: string;
}

export interface ClaimedDelivery {
  readonly id: number;
  readonly handler: string;
  /** This run's number: 1 on the first run, counted again from 1 after a replay. */
  readonly attempt: number;
  readonly replays: number;
  /** Its last run was cut short (the lease ran out: the process stopped during it). */
  readonly recovered: boolean;
  readonly event: StoredEvent;
}

export interface AttemptError {
  readonly message: string;
  readonly errorClass: string;
  readonly traceId?: string | undefined;
}

export type Outcome =
  | { readonly kind: 'done' }
  /** `where` said no: nothing to do, the delivery is finished. */
  | { readonly kind: 'skipped' }
  | { readonly kind: 'retry'; readonly runAt: number; readonly error: AttemptError }
  | { readonly kind: 'dead'; readonly error: AttemptError }
  /** Aborted by a shutdown: the run does not count, and the delivery is due again at once. */
  | { readonly kind: 'released'; readonly error?: AttemptError };

export interface Settlement {
  readonly id: number;
  readonly attempt: number;
  readonly replays: number;
  readonly startedAt: number;
  readonly outcome: Outcome;
}

export interface DeliveryRecord {
  readonly id: DeliveryId;
  readonly eventId: string;
  readonly eventName: string;
  readonly handler: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly replays: number;
  /** When a pending delivery may run; when a running one's lease ends. */
  readonly dueAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly lastError: AttemptError | null;
}

export interface AttemptRecord {
  readonly cycle: number;
  readonly attempt: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly outcome: 'done' | 'skipped' | 'retry' | 'dead' | 'released';
  readonly error: AttemptError | null;
}

export interface DeliveryDetail extends DeliveryRecord {
  readonly event: StoredEvent;
  /** Every attempt, replays included, oldest first. */
  readonly history: readonly AttemptRecord[];
}

/** A stored event as the admin tools list it. */
export interface EventRecord {
  readonly seq: number;
  readonly id: string;
  readonly name: string;
  readonly eventID: number | null;
  readonly entity: { readonly type: string; readonly id: string } | null;
  readonly receivedAt: number;
  readonly duplicates: number;
  /** Deliveries made at accept; 0: no handler matched (unrouted). */
  readonly routed: number;
}

export interface EventDetail extends EventRecord {
  readonly raw: string;
  readonly deliveries: readonly DeliveryRecord[];
}

export interface EventFilter {
  readonly name?: string | undefined;
  /** Paging: events stored after this one (its seq). */
  readonly afterSeq?: number | undefined;
  readonly limit?: number | undefined;
}

export interface DeliveryFilter {
  readonly status?: DeliveryStatus | undefined;
  readonly handler?: string | undefined;
  readonly eventName?: string | undefined;
  /** Paging: deliveries after this one (SQLite: ids greater than it; Redis: after it in the list). */
  readonly afterId?: DeliveryId | undefined;
  /** At most this many (default 100, at most 1,000). */
  readonly limit?: number | undefined;
}

/** Which deliveries to run again: the given ids, or every dead one that matches the filters. */
export type ReplaySelector =
  | { readonly ids: readonly DeliveryId[] }
  | { readonly allDead: true; readonly handler?: string | undefined; readonly eventName?: string | undefined };

export interface ReplayResult {
  /** Ids of the deliveries that are pending again. */
  readonly replayed: readonly DeliveryId[];
  /** Ids asked for that do not exist or are not dead or done (running or pending ones are left alone). */
  readonly skipped: readonly DeliveryId[];
}

export type DeliveryCounts = Readonly<Record<DeliveryStatus, number>> & { readonly unroutedEvents: number };

/** What a metrics scrape reads: cheap (indexes only), unlike counts() which counts done ones too. */
export interface Backlog {
  readonly pending: number;
  readonly running: number;
  readonly dead: number;
  readonly unroutedEvents: number;
  /** When the oldest pending or running delivery was made (ms since the epoch); null when none. */
  readonly oldestCreatedAt: number | null;
}

export interface PruneResult {
  readonly events: number;
  readonly deliveries: number;
}

/** What the command line, the admin API, the metrics and retention use: any back end has these. */
export interface DeliveryOps {
  /** 'number': delivery ids are whole numbers (SQLite); 'text': job ids (Redis). */
  readonly deliveryIds: 'number' | 'text';
  list(filter?: DeliveryFilter): Promise<DeliveryRecord[]>;
  get(id: DeliveryId): Promise<DeliveryDetail | undefined>;
  /** `onProgress` is told how far a long replay got, where the back end replays one by one (Redis). */
  replay(selector: ReplaySelector, onProgress?: (p: { done: number; total: number }) => void): Promise<ReplayResult>;
  counts(): Promise<DeliveryCounts>;
  backlog(): Promise<Backlog>;
  listEvents(filter?: EventFilter): Promise<EventRecord[]>;
  /** An event by its id, with its deliveries. */
  getEvent(id: string): Promise<EventDetail | undefined>;
  /** Deletes finished events and deliveries received before `cutoff`; dead letters and their events stay. */
  prune(cutoff: number): Promise<PruneResult>;
}

/** A store the in-process dispatcher claims from (SQLite). */
export interface DeliveryStore extends DeliveryOps {
  /**
   * Claims up to `limit` due deliveries (pending and due, or running with a lease that ran out)
   * and leases them for `leaseMs`. `exclude` lists deliveries whose earlier run has not settled.
   * `nextDueAt` is when the next one that is not claimed now falls due (null: none).
   */
  claim(limit: number, leaseMs: number, exclude?: readonly number[]): Promise<{
    deliveries: ClaimedDelivery[];
    nextDueAt: number | null;
  }>;
  /** Records runs' outcomes (each with its attempt in the history). */
  settle(settlements: readonly Settlement[]): Promise<void>;
  /** Puts claimed deliveries that never started back to pending, due now, the claim not counted. */
  releaseClaims(ids: readonly number[]): Promise<void>;
  /** Extends the leases of runs still going. */
  extendLeases(ids: readonly number[], leaseMs: number): Promise<void>;
  /** Called when new deliveries may be due (an accept made some, or a replay). */
  onDue(listener: () => void): void;
}
