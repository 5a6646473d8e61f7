// The delivery state machine of the SQLite store, inside the writer's transactions: claim under a
// lease, settle a run's outcome (only the run that holds the delivery: a replay or a second claim
// in between wins), release, extend leases, replay.
import type { ReplayResult, ReplaySelector } from '../contract.js';
import type { ClaimedDelivery, Settlement } from './claims.js';
import { type Statements, toStoredEvent } from './sql.js';

export function claim(
  s: Statements,
  limit: number,
  leaseMs: number,
  exclude: readonly number[],
  now: number,
  excludeHandlers: readonly string[] = [],
): { deliveries: ClaimedDelivery[]; nextDueAt: number | null } {
  // Chosen first, then taken: a running one (its lease ran out) is told apart as recovered.
  const handlers = JSON.stringify(excludeHandlers);
  const chosen = limit > 0 ? s.claimable.all(now, JSON.stringify(exclude), handlers, Math.min(limit, 1000)) : [];
  const recovered = new Set(chosen.filter((c) => c.status === 'running').map((c) => c.id));
  const order = new Map(chosen.map((c, i) => [c.id, i]));
  const rows = chosen.length > 0 ? s.claim.all(now + leaseMs, now, JSON.stringify(chosen.map((c) => c.id))) : [];
  rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!); // oldest due first, as chosen
  const deliveries = rows.map((r) => ({
    id: r.id,
    handler: r.handler,
    attempt: r.attempts,
    replays: r.replays,
    recovered: recovered.has(r.id),
    ...(r.collapsed > 0 ? { collapsed: r.collapsed } : {}),
    event: toStoredEvent(s.eventBySeq.get(r.event_seq)!),
  }));
  const next = s.nextDue.get(JSON.stringify(exclude), handlers)?.due_at ?? null;
  return { deliveries, nextDueAt: next };
}

export function settle(s: Statements, x: Settlement, now: number): void {
  const o = x.outcome;
  const err = 'error' in o ? o.error : undefined;
  s.attempt.run(x.id, x.replays, x.attempt, x.startedAt, now, o.kind, err?.message ?? null, err?.errorClass ?? null, err?.traceId ?? null);
  const guard = [x.id, x.attempt, x.replays] as const;
  let finished: { handler: string; flow: string | null; flow_key: string | null } | undefined;
  switch (o.kind) {
    case 'done':
    case 'skipped':
      finished = s.finish.get('done', now, null, null, null, ...guard);
      break;
    case 'dead':
      finished = s.finish.get('dead', now, err!.message, err!.errorClass, err!.traceId ?? null, ...guard);
      break;
    case 'retry':
      s.retry.run(o.runAt, now, err!.message, err!.errorClass, err!.traceId ?? null, ...guard);
      break;
    case 'released':
      s.release.run(now, now, ...guard);
      break;
  }
  // Done or dead: the next of its ordered key goes.
  if (finished?.flow === 'order' && finished.flow_key !== null) s.promote.run({ handler: finished.handler, key: finished.flow_key, now });
}

/** Replayed ordered deliveries wait their turn behind what their key has pending or running. */
function parkReplayed(s: Statements, ids: readonly number[], now: number): void {
  if (ids.length === 0) return;
  const keys = new Map<string, { handler: string; key: string }>();
  for (const r of s.park.all(JSON.stringify(ids))) keys.set(`${r.handler}\u0000${r.flow_key}`, { handler: r.handler, key: r.flow_key });
  for (const k of keys.values()) s.promote.run({ ...k, now });
}

export function releaseClaims(s: Statements, ids: readonly number[], now: number): void {
  s.unclaim.run(now, now, JSON.stringify(ids));
}

export function extendLeases(s: Statements, ids: readonly number[], leaseMs: number, now: number): void {
  s.extend.run(now + leaseMs, now, JSON.stringify(ids));
}

export function replay(s: Statements, sel: ReplaySelector, now: number): ReplayResult {
  if ('ids' in sel) {
    const replayed = s.replayIds.all(now, now, JSON.stringify(sel.ids)).map((r) => r.id);
    parkReplayed(s, replayed, now);
    const done = new Set(replayed);
    return { replayed, skipped: sel.ids.filter((id) => !done.has(id as number)) };
  }
  const replayed = s.replayDead.all({ now, handler: sel.handler ?? null, eventName: sel.eventName ?? null }).map((r) => r.id);
  parkReplayed(s, replayed, now);
  return { replayed, skipped: [] };
}
