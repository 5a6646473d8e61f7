// A delivery on Redis is a BullMQ job, its id `eventId@handler` (a duplicate makes no second job),
// carrying its event and its history: what the job holds, and how it reads as a delivery.
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AttemptError, AttemptRecord, DeliveryRecord, DeliveryStatus, StoredEvent } from '../contract.js';

/** The BullMQ queue every instance shares. */
export const QUEUE_NAME = 'deliveries';

/** A job's flow as its data carries it: its kind and its key's Redis key (after the store's prefix). */
export interface JobFlow {
  readonly kind: 'order' | 'debounce';
  readonly key: string;
}

/** What a delivery job carries: its event, so that a run needs no second read. */
export interface DeliveryJobData {
  readonly event: StoredEvent;
  readonly handler: string;
  /** Runs recorded in this cycle (0 before the first). */
  readonly attempt: number;
  readonly replays: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When a delayed (retried) job falls due. */
  readonly dueAt: number | null;
  readonly lastError: AttemptError | null;
  readonly history: readonly AttemptRecord[];
  /** Its handler's orderBy or debounce, with the key of this event. */
  readonly flow?: JobFlow;
  /** A debounced run that failed: how many events were collapsed into it (the count its retries keep). */
  readonly collapsed?: number;
}

/**
 * What a completed job returns: its last run, which is not in `data.history` (saves a write); or,
 * for a debounced job that never ran, the job of the later event it was collapsed into.
 */
export type DeliveryJobResult = { readonly finished: AttemptRecord } | { readonly collapsedInto: string };

export type DeliveryJob = Job<DeliveryJobData, DeliveryJobResult | undefined, string>;
export type DeliveryQueue = Queue<DeliveryJobData, DeliveryJobResult | undefined, string>;

/** What the store's reads and maintenance work on. */
export interface RedisParts {
  readonly redis: Redis;
  readonly queue: DeliveryQueue;
  /** The key of one of the store's own records (under its prefix). */
  key(suffix: string): string;
  now(): number;
}

/** `eventId@handler`. BullMQ keeps ':' for its own keys, so ':' and '@' in an event id are percent-encoded. */
export function jobIdOf(eventId: string, handler: string): string {
  return `${eventId.replace(/[%:@]/g, (c) => encodeURIComponent(c))}@${handler}`;
}

/** Job options: our own retries (attempt counts, backoff) over BullMQ's; BullMQ's only for a lost write. */
export function jobOptions(jobId: string, retentionMs: number) {
  return {
    jobId,
    // A run whose outcome could not be written (Redis went away) is run again a second later;
    // a dead letter is an UnrecoverableError, which no attempt count holds back.
    attempts: 1_000_000,
    backoff: { type: 'fixed' as const, delay: 1000 },
    removeOnComplete: retentionMs > 0 ? { age: Math.ceil(retentionMs / 1000) } : false,
    removeOnFail: false,
  };
}

/** The job's data with its finishing run (from the return value) folded in. */
export function settledData(job: DeliveryJob): DeliveryJobData {
  const rv = job.returnvalue;
  const finished = rv && 'finished' in rv ? rv.finished : undefined;
  if (!finished || job.finishedOn === undefined) return job.data;
  const d = job.data;
  return { ...d, attempt: d.attempt + 1, updatedAt: finished.finishedAt, dueAt: null, lastError: null, history: [...d.history, finished] };
}

export type JobState = 'waiting' | 'delayed' | 'prioritized' | 'paused' | 'waiting-children' | 'active' | 'completed' | 'failed';

/** Which BullMQ states each delivery status covers. */
export const STATES: Readonly<Record<DeliveryStatus, readonly JobState[]>> = {
  pending: ['waiting', 'delayed', 'prioritized', 'paused', 'waiting-children'],
  running: ['active'],
  done: ['completed'],
  dead: ['failed'],
};

/** The jobs of a delivery status, from BullMQ's counts by state. */
export const countOf = (counts: Readonly<Record<string, number>>, status: DeliveryStatus): number =>
  STATES[status].reduce((n, state) => n + (counts[state] ?? 0), 0);

export const statusOfState = (state: string): DeliveryStatus | undefined =>
  (Object.keys(STATES) as DeliveryStatus[]).find((s) => (STATES[s] as readonly string[]).includes(state));

export function recordOf(job: DeliveryJob, status: DeliveryStatus): DeliveryRecord {
  const d = status === 'done' ? settledData(job) : job.data;
  // A job BullMQ failed itself (stalled too often: its instance died each time) has no run of
  // ours that ended dead: its failedReason is the last error.
  const byBullmq = status === 'dead' && job.failedReason && d.history.at(-1)?.outcome !== 'dead';
  const lastError = byBullmq ? { message: job.failedReason, errorClass: 'Stalled' } : d.lastError;
  return {
    id: job.id!,
    eventId: d.event.id,
    eventName: d.event.name,
    handler: d.handler,
    status,
    attempts: d.attempt,
    replays: d.replays,
    dueAt: status === 'pending' ? d.dueAt : null,
    createdAt: d.createdAt,
    updatedAt: Math.max(d.updatedAt, job.finishedOn ?? 0),
    lastError,
    ...(status === 'done' && job.returnvalue && 'collapsedInto' in job.returnvalue ? { collapsedInto: job.returnvalue.collapsedInto } : {}),
  };
}
