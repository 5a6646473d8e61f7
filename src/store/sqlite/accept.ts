// The accept of one request's events, inside the writer's transaction: each event is a duplicate
// (of a stored one with its id: the payload's own, or its body's hash within the dedup window), or
// a new row with one delivery per handler it fans out to.
import type { AcceptedEvent, AcceptResult } from '../contract.js';
import type { EventIds } from './event-ids.js';
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
    for (const h of e.handlers) s.fanOut.run(seq, h, now, now, now);
    accepted++;
    out.push({ id, name: e.name, duplicate: false });
  }
  return { accepted, duplicates: events.length - accepted, events: out };
}
