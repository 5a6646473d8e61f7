// The dedup key of a payload without a unique id of its own: a hash of its canonical JSON,
// so that HubEx's retry of the same body maps to the same id whatever its key order.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level. Depth is bounded by parseBody's MAX_DEPTH. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (obj[k] === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${canonicalJson(obj[k])}`;
  }
  return `${out}}`;
}

/** 32 hex characters (128 bits) of sha256 over the canonical JSON. */
export function contentId(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32);
}
