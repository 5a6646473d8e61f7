// The store: what both back ends promise (SQLite for one instance, Redis for several), and what the
// rest of the app uses of them. Each back end is a factory returning a Store and its
// DeliveryWorker (src/store/sqlite, src/store/redis); test/store-conformance.test.ts holds both to
// this contract. The store knows nothing of handlers: it is told at accept which ones an event fans
// out to, and its worker is given the function that runs one delivery.
import type { HubexEvent } from '../events/event.js';

/** The tenant (HubEx account) of every event while the router serves one. */
export const DEFAULT_TENANT = 'default';

/** An event on its way into the store, with what the router decided about it before. */
export interface IncomingEvent {
  readonly event: HubexEvent;
  /** The HubEx account it came from; `default` while the router serves one. */
  readonly tenant: string;
  /** The handlers it fans out to, one delivery each; none keeps it as unrouted. */
  readonly handlers: readonly string[];
  /** How some of those deliveries are held back (a handler's orderBy or debounce), by handler name. */
  readonly flows?: ReadonlyMap<string, Flow>;
}

/**
 * How one handler's delivery of an event waits for others of its key (computed at fan-out from the
 * handler's orderBy or debounce). Keys are the handler's own: the store scopes them by handler and tenant.
 */
export type Flow =
  /** One at a time per key, in the order received; a failing run holds back its key until done or dead. */
  | { readonly kind: 'order'; readonly key: string }
  /**
   * Runs `periodMs` after the last event of its key (but no later than `maxWaitMs` after the first
   * of the burst), once, with that last event; the earlier ones are finished as collapsed into it.
   */
  | { readonly kind: 'debounce'; readonly key: string; readonly periodMs: number; readonly maxWaitMs: number };

/** A flow's key as a store keeps it (with its handler): the tenant's own, so that two accounts' keys never meet. */
export const scopedFlowKey = (tenant: string, key: string): string => `${tenant}\u0000${key}`;

export interface AcceptedEvent {
  readonly id: string;
  readonly name: string;
  /** True when an event with this id was already stored; nothing new was written for it. */
  readonly duplicate: boolean;
}

export interface AcceptResult {
  readonly accepted: number;
  readonly duplicates: number;
  readonly events: readonly AcceptedEvent[];
}

export type Health = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type DeliveryStatus = 'pending' | 'running' | 'done' | 'dead';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'running', 'done', 'dead'];
/** A delivery's id: a number in SQLite; on Redis the BullMQ job id, `eventId@handler`. */
export type DeliveryId = number | string;

/** An event as stored: the runner rebuilds the HubexEvent from `raw`. */
export interface StoredEvent {
  readonly seq: number;
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly receivedAt: number;
  readonly raw: string;
}

export interface AttemptError {
  readonly message: string;
  readonly errorClass: string;
  readonly traceId?: string | undefined;
}

/** What a run of a delivery ends with. */
export type Outcome =
  | { readonly kind: 'done' }
  /** `where` said no: nothing to do, the delivery is finished. */
  | { readonly kind: 'skipped' }
  | { readonly kind: 'retry'; readonly runAt: number; readonly error: AttemptError }
  | { readonly kind: 'dead'; readonly error: AttemptError }
  /** Aborted by a shutdown: the run does not count, and the delivery is due again at once. */
  | { readonly kind: 'released'; readonly error?: AttemptError };

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
  /**
   * A debounced delivery that never ran: the id of a later delivery of its key's burst (SQLite: the
   * one that ran; Redis: the latest when it fell due, which may be collapsed in turn).
   */
  readonly collapsedInto?: DeliveryId;
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
  readonly tenant: string;
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
  /** Paging: deliveries after this one in the list's order (SQLite: ids greater than it, or smaller newest first; Redis: after it in the list). */
  readonly afterId?: DeliveryId | undefined;
  /** Newest first (the dashboard's order); default oldest first. On Redis, within each status. */
  readonly newestFirst?: boolean | undefined;
  /** At most this many (default 100, at most 1,000). */
  readonly limit?: number | undefined;
}

/** What the dashboard searches events by: newest first, page by page. */
export interface EventSearch {
  readonly name?: string | undefined;
  /** Events about this task (their entity). */
  readonly taskID?: number | undefined;
  /** Received at or after this time (ms since the epoch). */
  readonly receivedFrom?: number | undefined;
  /** Received before this time (ms since the epoch). */
  readonly receivedBefore?: number | undefined;
  /** Paging: events stored before this one (its seq); the `next` of the page before. */
  readonly beforeSeq?: number | undefined;
  /** At most this many (default 50, at most 500). */
  readonly limit?: number | undefined;
}

export interface EventPage {
  readonly items: readonly EventRecord[];
  /**
   * Where the next page starts (its beforeSeq), or null when there is nothing older. A back end
   * that looks at a bounded number of events per page (Redis) may give fewer items than the limit
   * and still a next.
   */
  readonly next: number | null;
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

/** The store, whatever the back end. */
export interface Store {
  readonly backend: 'sqlite' | 'redis';
  /** Whether other router instances share it (and may run its deliveries). */
  readonly shared: boolean;
  /** 'number': delivery ids are whole numbers (SQLite); 'text': job ids (Redis). */
  readonly deliveryIds: 'number' | 'text';
  /**
   * Stores the events, and one delivery per event and handler, durably; resolves only once they
   * are committed. Rejects with StoreUnavailableError when the store cannot take the write (then
   * nothing of this call was stored, and the caller must not acknowledge it), or with
   * UnstorableEventError when an event's data is what it refuses.
   */
  accept(events: readonly IncomingEvent[]): Promise<AcceptResult>;
  /** Whether the store takes writes right now (a real write, not a guess). Never rejects. */
  health(): Promise<Health>;
  list(filter?: DeliveryFilter): Promise<DeliveryRecord[]>;
  /** One delivery, with its event and every attempt. */
  show(id: DeliveryId): Promise<DeliveryDetail | undefined>;
  /** `onProgress` is told how far a long replay got, where the back end replays one by one. */
  replay(selector: ReplaySelector, onProgress?: (p: { done: number; total: number }) => void): Promise<ReplayResult>;
  counts(): Promise<DeliveryCounts>;
  backlog(): Promise<Backlog>;
  listEvents(filter?: EventFilter): Promise<EventRecord[]>;
  /** An event by its id, with its deliveries. */
  showEvent(id: string): Promise<EventDetail | undefined>;
  /** Events newest first, by name, task and receive time, a page at a time (the dashboard's search). */
  searchEvents(search: EventSearch): Promise<EventPage>;
  /** Deletes finished events and deliveries received before `cutoff`; dead letters and their events stay. */
  prune(cutoff: number): Promise<PruneResult>;
  /**
   * A small named value kept durably, per tenant: the reconciler's cursor (src/sync, `tasks`), the
   * dashboard's last sign-out. Null until first written.
   */
  readCursor(tenant: string, name: string): Promise<string | null>;
  writeCursor(tenant: string, name: string, value: string): Promise<void>;
  /**
   * Takes the lease `name` for `holder` for `ms` (or renews it, when the holder has it): false
   * while another holder's has not run out. On a shared store it is one instance's at a time.
   */
  lease(name: string, holder: string, ms: number): Promise<boolean>;
  /** Gives the lease up, when the holder still has it. */
  releaseLease(name: string, holder: string): Promise<void>;
  /**
   * When each of these tasks last had a pushed event (any but the router's own task.modified),
   * in ms since the epoch, among those received since `sinceMs`; a task with none is absent.
   * Pushes older than retention (SQLite) or a week (Redis) are forgotten, which can only make a
   * change look uncovered, never covered.
   */
  lastPushedTasks(tenant: string, taskIDs: readonly number[], sinceMs: number): Promise<Map<number, number>>;
  /** Finishes pending writes and closes the store; later calls reject. */
  close(): Promise<void>;
}

/** A delivery about to run. */
export interface RunnableDelivery {
  readonly id: DeliveryId;
  readonly handler: string;
  /** This run's number: 1 on the first run, counted again from 1 after a replay. */
  readonly attempt: number;
  /** Its last run was cut short, the process stopping during it (a crash, kill -9, an uncaught error). */
  readonly recovered?: boolean;
  /** A debounced delivery: how many earlier events of its key were collapsed into this run. */
  readonly collapsed?: number;
  readonly event: StoredEvent;
}

export interface RunResult {
  readonly outcome: Outcome;
  readonly startedAt: number;
  readonly ms: number;
  /** The handler's own promise, when it was called: it may outlive an abort it ignores. */
  readonly work: Promise<unknown> | undefined;
  /**
   * Called by the worker once the outcome is stored (not when storing it failed: the delivery runs
   * again then). What a dead delivery's handler asked for (onDead) runs here, once per death.
   * `signal` aborts at the worker's stop deadline: a stop does not wait for it longer than for runs.
   */
  readonly onRecorded?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Runs one delivery and says what comes next; never rejects. The app gives it to the worker
 * (src/delivery/runner.ts): the store claims, leases and records, the app runs handlers.
 */
export type RunDelivery = (delivery: RunnableDelivery, controller: AbortController) => Promise<RunResult>;

/** Limits on runs beyond the worker's own concurrency. */
export interface RunLimits {
  /** Runs of a handler at once, at most, by handler name: on a shared store, across every instance. */
  readonly concurrency?: ReadonlyMap<string, number>;
}

/** What claims deliveries, runs them (with the RunDelivery it is given) and records their outcome. */
export interface DeliveryWorker {
  start(run: RunDelivery, limits?: RunLimits): void;
  /** Runs in progress, lingering ones (aborted, not yet returned) included. */
  readonly active: number;
  /** Resolves when nothing runs here. */
  idle(): Promise<void>;
  /** Stops taking deliveries; running ones get until `deadlineMs`, then are aborted and released. */
  stop(deadlineMs: number): Promise<void>;
  /**
   * For a stop after an uncaught exception: stop() then neither waits for the running handlers
   * nor releases them. They run again once their lease ends, their attempt counted, so a handler
   * that takes the process down each time reaches its dead letter instead of looping.
   */
  abandon(): void;
}

/** A back end: its store, and its worker. */
export interface Backend {
  readonly store: Store;
  readonly worker: DeliveryWorker;
}
