// The handler API: a module's default export is defineHandler({...}). The names a handler
// subscribes to type its events: `on: 'task.created'` gives `ctx.event.taskID: number`.
import type { Logger } from 'pino';
import type { HubexEvent, KnownEventName } from '../events/event.js';
import type { HubexClient } from '../hubex/client.js';

/** A name the catalogue knows (autocompleted), or any other: HubEx installations add their own. */
// `string & {}` keeps the known names in the editor's completions while letting any string through.
export type EventName = KnownEventName | (string & {});

/** What a handler subscribes to: an event name ('asset.created'), a numeric event id (40), or '*'. */
export type EventSelector = EventName | number;

/** An event about a task: it has the task's id (the router checks before the handler runs). */
export interface TaskEvent extends HubexEvent {
  readonly taskID: number;
  readonly entity: { readonly type: 'task'; readonly id: number };
}

/** An event about an asset: it has the asset's id (the router checks before the handler runs). */
export interface AssetEvent extends HubexEvent {
  readonly assetID: number;
  readonly entity: { readonly type: 'asset'; readonly id: number };
}

/** The event a subscription delivers: task.* names give TaskEvent, asset.* AssetEvent, the rest HubexEvent. */
export type EventOf<S> = S extends `task.${string}` ? TaskEvent : S extends `asset.${string}` ? AssetEvent : HubexEvent;

/** The entities whose events are typed with their id, and the field that holds it. */
export const TYPED_ENTITIES = { task: 'taskID', asset: 'assetID' } as const;

export interface HandlerContext<E extends HubexEvent = HubexEvent, Hubex = HubexClient> {
  /** The stored event. Delivery is at least once: use event.id to be idempotent. */
  readonly event: E;
  /** The shared, authenticated HubEx API client (its calls fail, not retried, when no HubEx token is set). */
  readonly hubex: Hubex;
  /** A child logger bound to this delivery (event id, delivery id, handler, attempt). */
  readonly log: Logger;
  /** Aborted at the handler's timeout and on shutdown: pass it to every call that takes one. */
  readonly signal: AbortSignal;
  /** 1 on the first run, 2 on the first retry, ... */
  readonly attempt: number;
  readonly deliveryId: number | string;
  /** With debounce: how many earlier events of this key were collapsed into this run (0 otherwise). */
  readonly collapsed: number;
}

/** What onDead gets: the delivery's event and its last error. */
export interface DeadContext<E extends HubexEvent = HubexEvent, Hubex = HubexClient> {
  readonly event: E;
  readonly hubex: Hubex;
  readonly log: Logger;
  /** Aborted after the handler's timeout, and on shutdown. */
  readonly signal: AbortSignal;
  /** How many runs it had in this cycle (replays start a new one). */
  readonly attempts: number;
  readonly deliveryId: number | string;
}

/** The last error of a dead delivery, as it is stored. */
export interface DeadError {
  readonly message: string;
  readonly errorClass: string;
  /** HubEx's traceIdentifier, when a HubEx call failed. */
  readonly traceId?: string | undefined;
}

/** How a handler's deliveries run; each unset one takes the router's setting. */
export interface HandlerPolicy {
  /** A run that takes longer is aborted through ctx.signal and counts as a failed attempt (HANDLER_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Runs of one delivery before it is dead (MAX_ATTEMPTS). */
  readonly maxAttempts?: number;
  /** Exponential backoff with full jitter: the first retry's ceiling and the longest wait (RETRY_BASE_MS, RETRY_MAX_MS). */
  readonly retry?: { readonly baseMs?: number; readonly maxMs?: number };
  /**
   * Runs of this handler at once, at most: with QUEUE=redis across every instance. Within
   * HANDLER_CONCURRENCY, which bounds each instance's runs of all handlers.
   */
  readonly concurrency?: number;
}

/** What orderBy and debounce key events by: a string or a number; null or undefined leaves the event out of it. */
export type FlowKey = string | number | null | undefined;

/** Debounce: a burst of events of one key runs the handler once, with the last event. */
export interface DebounceOptions<E extends HubexEvent = HubexEvent> {
  readonly key: (event: E) => FlowKey;
  /** The run waits this long after the last event of its key (each new one starts the wait again). */
  readonly periodMs: number;
  /** But no longer than this after the first event of the burst. Default 10 x periodMs. */
  readonly maxWaitMs?: number;
}

export interface HandlerDefinition<S extends EventSelector = EventSelector, Hubex = HubexClient> extends HandlerPolicy {
  /** Unique among loaded handlers; defaults to the module's file name. */
  readonly name?: string;
  /** Names, numeric event ids, or '*'. */
  readonly on: S | readonly S[];
  /** Runs at dispatch; false skips the event (the delivery is done). Throwing counts as a failed attempt. */
  readonly where?: (event: EventOf<S>) => boolean | Promise<boolean>;
  readonly handle: (ctx: HandlerContext<EventOf<S>, Hubex>) => unknown;
  /**
   * Events with the same key (`(e) => e.taskID`) run one at a time, in the order received; other
   * keys run in parallel. A failing run holds back its key until it is done or dead.
   */
  readonly orderBy?: (event: EventOf<S>) => FlowKey;
  /** A burst of events of one key within `periodMs` runs once, with the last; the others are recorded as collapsed. */
  readonly debounce?: DebounceOptions<EventOf<S>>;
  /**
   * Runs once when a delivery of this handler becomes dead (to tell a person, say). A failure or
   * a timeout here is logged, and neither retried nor counted against the delivery. Its event is
   * the general HubexEvent: a delivery may die because the event lacked what `on` promised.
   */
  readonly onDead?: (ctx: DeadContext<HubexEvent, Hubex>, error: DeadError) => unknown;
  /** False leaves the module loaded but subscribed to nothing (an example that needs configuring). */
  readonly enabled?: boolean;
}

/** Any handler definition, whatever its subscriptions and client: what the loader and the testing kit take. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a definition's own types are checked where it is written
export type AnyHandlerDefinition = HandlerDefinition<any, any>;

/** A loaded handler: named, its subscriptions a list, its policy checked. */
export interface Handler extends HandlerPolicy {
  readonly name: string;
  readonly on: readonly EventSelector[];
  readonly where?: (event: HubexEvent) => boolean | Promise<boolean>;
  readonly handle: (ctx: HandlerContext<HubexEvent, unknown>) => unknown;
  readonly orderBy?: (event: HubexEvent) => FlowKey;
  readonly debounce?: Required<DebounceOptions>;
  readonly onDead?: (ctx: DeadContext<HubexEvent, unknown>, error: DeadError) => unknown;
  readonly enabled?: boolean;
  /** Its subscriptions are all names of typed entities (task.*, asset.*): each event must have its entity's id. */
  readonly typed?: boolean;
}

const BRAND = Symbol.for('hubex-router.handler');

/**
 * Declares a handler. `on` types the event: `defineHandler({ on: 'task.created', handle({ event })
 * { event.taskID } })`. The loader checks its shape and gives it its file name when it has none.
 */
export function defineHandler<const S extends EventSelector = EventSelector, Hubex = HubexClient>(
  definition: HandlerDefinition<S, Hubex>,
): HandlerDefinition<S, Hubex> {
  return Object.freeze({ ...definition, [BRAND]: true });
}

export const isDefinedHandler = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
