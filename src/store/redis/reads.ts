// What the tools read of the Redis store: deliveries (BullMQ's jobs, by state), events (hashes in
// a sorted set by sequence number), the counts and the backlog the metrics scrape.
import type {
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryId,
  DeliveryRecord,
  DeliveryStatus,
  EventDetail,
  EventFilter,
  EventPage,
  EventRecord,
  EventSearch,
} from '../contract.js';
import { DEFAULT_TENANT } from '../contract.js';
import { countOf, type DeliveryJob, jobIdOf, type RedisParts, recordOf, settledData, STATES, statusOfState } from './jobs.js';

/** The fields of an event's hash that listing reads (all but the body). */
const EVENT_FIELDS = ['seq', 'id', 'tenant', 'name', 'eventID', 'entityType', 'entityId', 'receivedAt', 'duplicates', 'handlers'] as const;

export async function counts(r: RedisParts): Promise<DeliveryCounts> {
  const [c, unrouted] = await Promise.all([r.queue.getJobCounts(...Object.values(STATES).flat()), r.redis.zcard(r.key('unrouted'))]);
  const sum = (s: DeliveryStatus) => countOf(c, s);
  return { pending: sum('pending'), running: sum('running'), done: sum('done'), dead: sum('dead'), unroutedEvents: unrouted };
}

export async function backlog(r: RedisParts): Promise<Backlog> {
  const [c, unrouted, oldest] = await Promise.all([
    r.queue.getJobCounts(...STATES.pending, ...STATES.running, ...STATES.dead),
    r.redis.zcard(r.key('unrouted')),
    Promise.all([
      r.queue.getJobs(['waiting'], 0, 0, true),
      r.queue.getJobs(['active'], 0, 9, true),
      r.queue.getJobs(['delayed'], 0, 49, true),
    ]),
  ]);
  const sum = (s: DeliveryStatus) => countOf(c, s);
  const created = oldest
    .flat()
    .filter(Boolean)
    .map((j) => (j as DeliveryJob).data.createdAt);
  return {
    pending: sum('pending'),
    running: sum('running'),
    dead: sum('dead'),
    unroutedEvents: unrouted,
    oldestCreatedAt: created.length ? Math.min(...created) : null,
  };
}

export async function list(r: RedisParts, filter: DeliveryFilter = {}): Promise<DeliveryRecord[]> {
  const limit = filter.limit ?? 100;
  const statuses = filter.status ? [filter.status] : (Object.keys(STATES) as DeliveryStatus[]);
  const out: DeliveryRecord[] = [];
  // Paging after a job that has since moved to another status (replayed, finished) starts
  // over, rather than answering an empty page that reads as the end.
  const anchorState = filter.afterId === undefined ? undefined : statusOfState(await r.queue.getJobState(String(filter.afterId)));
  let passed = filter.afterId === undefined || anchorState === undefined || !statuses.includes(anchorState);
  let scanned = 0;
  const PAGE = 200;
  // Walks each status's jobs oldest first; filters by handler and event name on the way, at
  // most 50,000 jobs (list dead letters with --status dead to narrow it).
  for (const status of statuses) {
    for (const state of STATES[status]) {
      for (let start = 0; out.length < limit && scanned < 50_000; start += PAGE) {
        const jobs = (await r.queue.getJobs([state], start, start + PAGE - 1, !filter.newestFirst)) as DeliveryJob[];
        scanned += jobs.length;
        for (const job of jobs) {
          if (!job?.id) continue;
          if (!passed) {
            passed = job.id === String(filter.afterId);
            continue;
          }
          if (filter.handler && job.data.handler !== filter.handler) continue;
          if (filter.eventName && job.data.event.name !== filter.eventName) continue;
          out.push(recordOf(job, status));
          if (out.length >= limit) break;
        }
        if (jobs.length < PAGE) break;
      }
    }
  }
  return out;
}

export async function show(r: RedisParts, id: DeliveryId): Promise<DeliveryDetail | undefined> {
  // The job and its state are two reads: a run that finishes between them would pair a
  // finished state with the data from before the run. Read the state on both sides, and again
  // until they agree (a handful of tries; a job that keeps moving is shown as last read).
  let job: DeliveryJob | undefined;
  let state = await r.queue.getJobState(String(id));
  for (let tries = 0; tries < 5; tries++) {
    job = (await r.queue.getJob(String(id))) as DeliveryJob | undefined;
    if (!job) return undefined;
    const after = await job.getState();
    if (after === state) break;
    state = after;
  }
  const status = statusOfState(state);
  if (!job || !status) return undefined;
  return {
    ...recordOf(job, status),
    event: { ...job.data.event, tenant: job.data.event.tenant ?? DEFAULT_TENANT },
    history: settledData(job).history,
  };
}

export async function listEvents(r: RedisParts, filter: EventFilter = {}): Promise<EventRecord[]> {
  const limit = filter.limit ?? 100;
  const out: EventRecord[] = [];
  let after = filter.afterSeq ?? 0;
  for (let scanned = 0; out.length < limit && scanned < 50_000;) {
    const ids = await r.redis.zrangebyscore(r.key('events'), `(${after}`, '+inf', 'LIMIT', 0, 200);
    if (ids.length === 0) break;
    scanned += ids.length;
    for (const e of await eventsOf(r, ids)) {
      after = e.seq;
      if (filter.name && e.name !== filter.name) continue;
      const { handlers: _h, ...record } = e;
      out.push(record);
      if (out.length >= limit) break;
    }
  }
  return out;
}

/** Events looked at, at most, for one page of a search: a rare task's events may take several pages to find. */
export const SEARCH_SCAN = 5000;
/** Events read in one round trip of a search. */
const SEARCH_BATCH = 500;

export async function searchEvents(r: RedisParts, f: EventSearch): Promise<EventPage> {
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 500);
  const task = f.taskID === undefined ? undefined : String(f.taskID);
  const matched: string[] = [];
  let before = f.beforeSeq ?? Number.MAX_SAFE_INTEGER;
  let next: number | null = null;
  // The filter reads only the fields it needs; the records of the events it keeps are read after.
  scan: for (let scanned = 0; ;) {
    if (scanned >= SEARCH_SCAN) {
      next = before;
      break;
    }
    const ids = await r.redis.zrevrangebyscore(r.key('events'), `(${before}`, '-inf', 'LIMIT', 0, SEARCH_BATCH);
    scanned += ids.length;
    const pipe = r.redis.pipeline();
    for (const id of ids) pipe.hmget(r.key(`ev:${id}`), 'seq', 'name', 'entityType', 'entityId', 'receivedAt');
    const rows = (await pipe.exec()) ?? [];
    for (const [i, [, values]] of rows.entries()) {
      const [seq, name, entityType, entityId, receivedAt] = values as (string | null)[];
      if (seq === null || seq === undefined) continue; // pruned meanwhile
      // Sequence numbers follow the receive time: past the start of the span, nothing older matches.
      if (f.receivedFrom !== undefined && Number(receivedAt) < f.receivedFrom) break scan;
      before = Number(seq);
      if (f.receivedBefore !== undefined && Number(receivedAt) >= f.receivedBefore) continue;
      if (f.name && name !== f.name) continue;
      if (task !== undefined && (entityType !== 'task' || entityId !== task)) continue;
      matched.push(ids[i]!);
      if (matched.length >= limit) {
        next = before;
        break scan;
      }
    }
    if (ids.length < SEARCH_BATCH) break;
  }
  const items = (await eventsOf(r, matched)).map(({ handlers: _h, ...record }) => record);
  return { items, next };
}

export async function showEvent(r: RedisParts, id: string): Promise<EventDetail | undefined> {
  const h = await r.redis.hgetall(r.key(`ev:${id}`));
  if (!h.seq) return undefined;
  const record = eventRecordOf(h);
  const handlers = JSON.parse(h.handlers ?? '[]') as string[];
  const deliveries = (await Promise.all(handlers.map((name) => show(r, jobIdOf(record.id, name))))).filter(
    (d): d is DeliveryDetail => d !== undefined,
  );
  return { ...record, raw: h.raw ?? '', deliveries: deliveries.map(({ event: _e, history: _h, ...d }) => d) };
}

/** Events by id, with the handlers they fanned out to (missing ones left out). */
export async function eventsOf(r: RedisParts, ids: readonly string[]): Promise<(EventRecord & { handlers: string[] })[]> {
  const pipe = r.redis.pipeline();
  for (const id of ids) pipe.hmget(r.key(`ev:${id}`), ...EVENT_FIELDS);
  const res = (await pipe.exec()) ?? [];
  return res
    .map(
      ([, values]) =>
        Object.fromEntries(EVENT_FIELDS.map((f, i) => [f, (values as (string | null)[])[i] ?? undefined])) as Record<string, string>,
    )
    .filter((h) => h.seq !== undefined)
    .map((h) => ({ ...eventRecordOf(h), handlers: JSON.parse(h.handlers ?? '[]') as string[] }));
}

function eventRecordOf(h: Record<string, string>): EventRecord {
  const eventID = h.eventID ? Number(h.eventID) : null;
  return {
    seq: Number(h.seq),
    id: h.id ?? '',
    // Events stored before tenants were recorded belong to the one there was.
    tenant: h.tenant || DEFAULT_TENANT,
    name: h.name ?? '',
    eventID: Number.isFinite(eventID) ? eventID : null,
    entity: h.entityType ? { type: h.entityType, id: h.entityId ?? '' } : null,
    receivedAt: Number(h.receivedAt),
    duplicates: Number(h.duplicates ?? 0),
    routed: (JSON.parse(h.handlers ?? '[]') as string[]).length,
  };
}
