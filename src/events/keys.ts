// Key normalisation: `EventID`, `eventId`, `eventID` and `event_id` all become `eventID`,
// HubEx's API spelling (camelCase with an upper-case ID suffix).

const ACRONYMS: Record<string, string> = { id: 'ID', uid: 'UID', guid: 'GUID', uuid: 'UUID' };
const WORD = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g;

/**
 * Names of Object.prototype's members. A key that is one, or that normalises onto one (`ToString`
 * to `toString`), would hide it on the event's data: `String(event.data)` would throw in a handler.
 */
export const BUILTIN_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

// Bounded by count (CACHE_LIMIT) and by size: the normaliser refuses keys over 256 characters.
const cache = new Map<string, string>();
const CACHE_LIMIT = 10_000;

export function normalizeKey(key: string): string {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const words = key.match(WORD);
  let out = key;
  if (words) {
    out = words
      .map((w, i) => {
        const lower = w.toLowerCase();
        if (i === 0) return lower;
        return ACRONYMS[lower] ?? lower[0]!.toUpperCase() + lower.slice(1);
      })
      .join('');
  }
  if (cache.size < CACHE_LIMIT) cache.set(key, out);
  return out;
}

/** A numeric id that arrived as a string ("40") becomes a number; anything else is left alone. */
export function coerceId(value: unknown): unknown {
  if (typeof value === 'string' && /^-?\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return value;
}

/** True for keys that hold an id after normalisation: `id`, `taskID`, `eventUID`, ... */
export const isIdKey = (normalised: string): boolean => normalised === 'id' || normalised.endsWith('ID');
