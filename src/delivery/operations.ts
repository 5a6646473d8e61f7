// Dead letters and replay, for people: list deliveries by status with their last error, show
// one with its history, replay one, several, or all dead ones (optionally one handler's or one
// event name's). The command line and the admin API both call this module; it checks their
// input and speaks in sentences, the store underneath does the work in transactions.
import {
  DELIVERY_STATUSES,
  type DeliveryCounts,
  type DeliveryDetail,
  type DeliveryFilter,
  type DeliveryRecord,
  type DeliveryId,
  type DeliveryStatus,
  type EventDetail,
  type EventFilter,
  type EventRecord,
  type ReplayResult,
  type Store as FullStore,
} from '../store/contract.js';
import { NotFoundError, OperationError } from '../errors.js';

export { NotFoundError, OperationError };

type Store = Pick<FullStore, 'deliveryIds' | 'list' | 'show' | 'replay' | 'counts' | 'listEvents' | 'showEvent'>;

/** A DeliveryFilter as people type it: the status as text, checked here. */
export type ListOptions = Omit<DeliveryFilter, 'status'> & { readonly status?: string | undefined };

export async function listDeliveries(store: Store, options: ListOptions = {}): Promise<DeliveryRecord[]> {
  const filter: DeliveryFilter = {
    status: options.status === undefined ? undefined : statusOf(options.status),
    handler: options.handler,
    eventName: options.eventName,
    afterId: options.afterId === undefined ? undefined : deliveryIdOf(store, options.afterId, 'after'),
    limit: options.limit === undefined ? undefined : limitOf(options.limit),
    newestFirst: options.newestFirst,
  };
  return store.list(filter);
}

export async function listEvents(store: Store, options: EventFilter = {}): Promise<EventRecord[]> {
  return store.listEvents({
    name: options.name,
    afterSeq: options.afterSeq === undefined ? undefined : idOf(options.afterSeq, 'after'),
    limit: options.limit === undefined ? undefined : limitOf(options.limit),
  });
}

export async function showEvent(store: Store, id: string): Promise<EventDetail> {
  const e = await store.showEvent(id);
  if (!e) throw new NotFoundError(`There is no event with id ${JSON.stringify(id)}.`);
  return e;
}

/** Deliveries by status, and the events no handler matched. */
export function stats(store: Store): Promise<DeliveryCounts> {
  return store.counts();
}

export async function showDelivery(store: Store, id: DeliveryId): Promise<DeliveryDetail> {
  const n = deliveryIdOf(store, id, 'delivery id');
  const d = await store.show(n);
  if (!d) throw new NotFoundError(`There is no delivery ${n}; list them with: hubex-router deliveries list`);
  return d;
}

export type ReplayRequest =
  | { readonly ids: readonly DeliveryId[] }
  | { readonly allDead: true; readonly handler?: string | undefined; readonly eventName?: string | undefined };

export interface ReplayProgress {
  readonly done: number;
  readonly total: number;
}

/**
 * Puts deliveries back to pending with a fresh attempt count; their history is kept. By id: dead
 * or done ones (a running or pending one is left alone and reported as skipped). Otherwise every
 * dead one, or those of one handler or one event name. Long id lists go in slices, with progress.
 */
export async function replayDeliveries(
  store: Store,
  request: ReplayRequest,
  onProgress?: (p: ReplayProgress) => void,
): Promise<ReplayResult> {
  if ('ids' in request) {
    if (request.ids.length === 0) throw new OperationError('Name at least one delivery id to replay, or replay all dead ones.');
    const ids = [...new Set(request.ids.map((id) => deliveryIdOf(store, id, 'delivery id')))];
    const replayed: DeliveryId[] = [];
    const skipped: DeliveryId[] = [];
    const SLICE = 500;
    for (let i = 0; i < ids.length; i += SLICE) {
      const r = await store.replay({ ids: ids.slice(i, i + SLICE) });
      replayed.push(...r.replayed);
      skipped.push(...r.skipped);
      onProgress?.({ done: Math.min(i + SLICE, ids.length), total: ids.length });
    }
    return { replayed, skipped };
  }
  const result = await store.replay({ allDead: true, handler: request.handler, eventName: request.eventName }, onProgress);
  onProgress?.({ done: result.replayed.length, total: result.replayed.length });
  return result;
}

function statusOf(s: string): DeliveryStatus {
  const status = s.trim().toLowerCase();
  if (!(DELIVERY_STATUSES as readonly string[]).includes(status)) {
    throw new OperationError(`"${s}" is not a delivery status; use one of ${DELIVERY_STATUSES.join(', ')}.`);
  }
  return status as DeliveryStatus;
}

function idOf(v: number | string, what: string): number {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new OperationError(`The ${what} must be a whole number, not ${JSON.stringify(v)}.`);
  return n;
}

/** A delivery id as the store knows them: a whole number (SQLite), or a job id (Redis, `eventId@handler`). */
function deliveryIdOf(store: Pick<FullStore, 'deliveryIds'>, v: DeliveryId, what: string): DeliveryId {
  if (store.deliveryIds === 'number') return idOf(v, what);
  const id = String(v).trim();
  if (id === '' || id.length > 1000)
    throw new OperationError(`The ${what} must be a delivery id such as 1234@my-handler, not ${JSON.stringify(v)}.`);
  return id;
}

function limitOf(v: number): number {
  if (!Number.isSafeInteger(v) || v < 1 || v > 1000) throw new OperationError(`The limit must be from 1 to 1000, not ${v}.`);
  return v;
}
