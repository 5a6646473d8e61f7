// What the tools read of the SQLite store: deliveries with their history, events, the counts and
// the backlog the metrics scrape (from partial indexes only).
import type {
  AttemptRecord,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryRecord,
  DeliveryStatus,
  EventDetail,
  EventFilter,
  EventPage,
  EventRecord,
  EventSearch,
} from '../contract.js';
import { errorOf, type Statements, toEventRecord, toRecord, toStoredEvent } from './sql.js';

const limitOf = (limit: number | undefined) => Math.min(Math.max(limit ?? 100, 1), 1000);

export function list(s: Statements, f: DeliveryFilter): DeliveryRecord[] {
  const where = { status: f.status ?? null, handler: f.handler ?? null, eventName: f.eventName ?? null, limit: limitOf(f.limit) };
  const rows = f.newestFirst
    ? s.listNewest.all({ ...where, beforeId: f.afterId ?? Number.MAX_SAFE_INTEGER })
    : s.list.all({ ...where, afterId: f.afterId ?? 0 });
  return rows.map(toRecord);
}

export function show(s: Statements, id: number): DeliveryDetail | undefined {
  const row = s.one.get(id);
  if (!row) return undefined;
  const history: AttemptRecord[] = s.history.all(id).map((a) => ({
    cycle: a.cycle,
    attempt: a.attempt,
    startedAt: a.started_at,
    finishedAt: a.finished_at,
    outcome: a.outcome as AttemptRecord['outcome'],
    error: errorOf(a.error, a.error_class, a.trace_id),
  }));
  return { ...toRecord(row), event: toStoredEvent(s.eventBySeq.get(row.event_seq)!), history };
}

export function listEvents(s: Statements, f: EventFilter): EventRecord[] {
  return s.events.all({ name: f.name ?? null, afterSeq: f.afterSeq ?? 0, limit: limitOf(f.limit) }).map(toEventRecord);
}

export function searchEvents(s: Statements, f: EventSearch): EventPage {
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 500);
  let beforeSeq = f.beforeSeq ?? Number.MAX_SAFE_INTEGER;
  if (f.receivedBefore !== undefined) beforeSeq = Math.min(beforeSeq, s.seqFrom.get(f.receivedBefore)?.seq ?? Number.MAX_SAFE_INTEGER);
  const fromSeq = f.receivedFrom === undefined ? 0 : (s.seqFrom.get(f.receivedFrom)?.seq ?? Number.MAX_SAFE_INTEGER);
  const rows = s.searchEvents.all({
    beforeSeq,
    fromSeq,
    name: f.name ?? null,
    task: f.taskID === undefined ? null : String(f.taskID),
    limit: limit + 1,
  });
  const items = rows.slice(0, limit).map(toEventRecord);
  return { items, next: rows.length > limit ? items.at(-1)!.seq : null };
}

/** The event stored at `seq`, or (seq unknown here) the one with this id stored after `maxSeq` by another process. */
export function showEvent(s: Statements, id: string, seq: number | undefined, maxSeq: number): EventDetail | undefined {
  const row = seq === undefined ? s.eventAbove.get(maxSeq, id) : s.eventBySeqFull.get(seq);
  if (!row) return undefined;
  return { ...toEventRecord(row), raw: row.raw, deliveries: s.deliveriesOf.all(row.seq).map(toRecord) };
}

export function backlog(s: Statements): Backlog {
  const out = { pending: 0, running: 0 };
  for (const r of s.active.all()) out[r.status as 'pending' | 'running'] = r.n;
  return {
    ...out,
    dead: s.deadCount.get()!.n,
    unroutedEvents: s.unrouted.get()!.n,
    oldestCreatedAt: s.oldestActive.get()?.created_at ?? null,
  };
}

export function counts(s: Statements): DeliveryCounts {
  const out: Record<DeliveryStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
  for (const r of s.counts.all()) out[r.status] = r.n;
  return { ...out, unroutedEvents: s.unrouted.get()!.n };
}
