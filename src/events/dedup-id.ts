// The dedup key of a payload without a unique id of its own: a hash of its canonical JSON,
// so that HubEx's retry of the same body maps to the same id whatever its key order.
import { hash } from 'node:crypto';
import { jsonString } from '../json-string.js';

/** JSON with object keys sorted at every level. Depth is bounded by parseBody's MAX_DEPTH. */
export function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'string' ? jsonString(value) : (JSON.stringify(value) ?? 'null');
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // Sorting is skipped when the keys already are in order (a body that was canonical already).
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${jsonString(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/** 32 hex characters (128 bits) of sha256 over the canonical JSON. */
export function contentId(value: unknown): string {
  return hash('sha256', canonicalJson(value), 'hex').slice(0, 32);
}
