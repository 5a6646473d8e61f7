// The accept of one request's events, inside the writer's transaction: each event is a duplicate
// (of a stored one with its id: the payload's own, or its body's hash within the dedup window), or
// a new row with one delivery per handler it fans out to.
import type { AcceptedEvent, AcceptResult } from '../contract.js';
import type { EventIds } from './event-ids.js';
import type { WireFlow } from './protocol.js';
import type { Statements } from './sql.js';

/** An event as the route hands it over: what is stored, plus the handlers it fans out to. */
export interface EventInput {
  readonly key: string;
  readonly tenant: string;
  readonly idSource: 'payload' | 'hash';
  readonly eventID: number | null;
  readonly name: string;
  readonly entityType: string | null;
  readonly entityId: string | null;
  readonly raw: string;
  readonly handlers: readonly string[];
  /** How some of its deliveries wait for others of their key (orderBy, debounce). */
  readonly flows?: readonly WireFlow[];
}

export function acceptEvents(s: Statements, ids: EventIds, events: readonly EventInput[], now: number, windowMs: number): AcceptResult {
  let accepted = 0;
  const out: AcceptedEvent[] = [];
  for (const e of events) {
    const prior = ids.find(s, e.key);
    let id = e.key;
    if (prior) {
      // The same body again after the dedup window is a new event, with an id of its own:
      // '<key>.2', '<key>.3', ... A repeat is a duplicate of the latest of them while in the window.
      let latest = { ...prior, id };
      let n = 1;
      if (prior.id_source === 'hash') {
        // All of them, gaps left by a prune included: the latest by seq, the next after the highest.
        for (const r of ids.repeatsOf(s, e.key)) {
          n = Math.max(n, r.n);
          if (r.seq > latest.seq) latest = r;
        }
      }
      if (prior.id_source === 'payload' || now - latest.received_at < windowMs) {
        s.duplicate.run(now, latest.seq);
        out.push({ id: latest.id, name: e.name, duplicate: true });
        continue;
      }
      id = `${e.key}.${n + 1}`;
    }
    const seq = Number(
      s.insert.run(id, e.tenant, e.idSource, e.eventID, e.name, e.entityType, e.entityId, now, e.handlers.length, e.raw).lastInsertRowid,
    );
    ids.add(id, { seq, id_source: e.idSource, received_at: now });
    const flows = e.flows;
    for (const h of e.handlers) {
      const flow = flows?.find((f) => f[0] === h);
      if (flow) fanOutFlow(s, seq, flow, now);
      else s.fanOut.run(seq, h, now, now, now);
    }
    accepted++;
    out.push({ id, name: e.name, duplicate: false });
  }
  return { accepted, duplicates: events.length - accepted, events: out };
}

/**
 * A delivery with a flow. Ordered: due now when its key has nothing pending or running, else
 * parked (no due time) until those before it are done or dead. Debounced: due `periodMs` from now
 * (not past `maxWaitMs` after the burst's first event); the one of its key still waiting is
 * finished as collapsed into it, and counted.
 */
function fanOutFlow(s: Statements, seq: number, [handler, flow, key, periodMs, maxWaitMs]: WireFlow, now: number): void {
  const row = { seq, handler, flow, key, now, collapsed: 0, burstAt: null as number | null, dueAt: now as number | null };
  let waiting: { id: number; collapsed: number; burst_at: number | null; created_at: number }[] = [];
  if (flow === 'order') {
    if (s.flowBusy.get({ handler, key })) row.dueAt = null;
  } else {
    waiting = s.debounceWaiting.all({ handler, key });
    const burstAt = Math.min(now, ...waiting.map((w) => w.burst_at ?? w.created_at));
    row.burstAt = burstAt;
    row.collapsed = waiting.reduce((n, w) => n + w.collapsed + 1, 0);
    row.dueAt = Math.max(now, Math.min(now + periodMs, burstAt + maxWaitMs));
  }
  const id = Number(s.fanOutFlow.run(row).lastInsertRowid);
  for (const w of waiting) {
    s.collapse.run({ id: w.id, into: id, now });
    if (w.collapsed > 0) s.recollapse.run({ id: w.id, into: id });
  }
}
