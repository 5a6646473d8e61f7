// What the reconciler keeps in the SQLite store (src/sync): its cursors and its lease in `meta`,
// and the pushed events it compares polled changes with, read from `events`. Inside the thread.
import type { Statements } from './sql.js';

const cursorKey = (tenant: string, name: string) => `cursor:${tenant}:${name}`;
const leaseKey = (name: string) => `lease:${name}`;

export function readCursor(s: Statements, tenant: string, name: string): string | null {
  return s.getMeta.get(cursorKey(tenant, name))?.value ?? null;
}

export function writeCursor(s: Statements, tenant: string, name: string, value: string): void {
  s.setMeta.run(cursorKey(tenant, name), value);
}

/** Takes the lease when it is free, run out or already the holder's; false when another holds it. */
export function lease(s: Statements, name: string, holder: string, ms: number, now: number): boolean {
  const held = heldBy(s.getMeta.get(leaseKey(name))?.value);
  if (held && held.holder !== holder && held.until > now) return false;
  s.setMeta.run(leaseKey(name), JSON.stringify({ holder, until: now + ms }));
  return true;
}

export function releaseLease(s: Statements, name: string, holder: string): void {
  const row = s.getMeta.get(leaseKey(name));
  if (row && heldBy(row.value)?.holder === holder) s.deleteMeta.run(leaseKey(name), row.value);
}

/** A lease row as written by lease(); anything else (a damaged row) holds nothing. */
function heldBy(value: string | undefined): { holder: string; until: number } | undefined {
  if (value === undefined) return undefined;
  try {
    const v = JSON.parse(value) as { holder?: unknown; until?: unknown };
    return typeof v.holder === 'string' && typeof v.until === 'number' ? { holder: v.holder, until: v.until } : undefined;
  } catch {
    return undefined;
  }
}

export function lastPushedTasks(s: Statements, tenant: string, ids: readonly number[], sinceMs: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of s.lastPushedTasks.all({ since: sinceMs, tenant, ids: JSON.stringify(ids.map(String)) })) out.set(Number(r.id), r.at);
  return out;
}
