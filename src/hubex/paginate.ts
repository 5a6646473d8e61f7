// Walking HubEx lists (../shared/HUBEX.md, "Lists and pagination"): `Range: items=FROM-TILL`,
// 1-based and inclusive; the answer's `Content-Range: items=A-B/TOTAL` says where to go on.
// Without Range a list is cut at 10,000 items, so Range is always sent. Many lists answer a map
// keyed by id whose values carry no id: each item gets its key as `id`.
import type { HubexHttp } from './http.js';
import type { CallOptions } from './http-types.js';

export interface PageOptions {
  readonly query?: CallOptions['query'];
  /** Items per request. Default 100. */
  readonly pageSize?: number;
  readonly signal?: AbortSignal | undefined;
}

export interface ContentRange {
  readonly from: number;
  readonly till: number;
  readonly total: number;
}

/** `items=1-100/2345` (also `items 1-100/2345`, and `*` for an empty list). */
export function parseContentRange(header: string | null): ContentRange | undefined {
  if (!header) return undefined;
  const m = /^\s*items[=\s](?:(\d+)-(\d+)|\*)\/(\d+)\s*$/i.exec(header);
  if (!m) return undefined;
  const total = Number(m[3]);
  return m[1] === undefined ? { from: 0, till: 0, total } : { from: Number(m[1]), till: Number(m[2]), total };
}

/** A list answer as items: an array as it is, a map keyed by id as its values with `id` set. */
export function itemsOf<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body === null || typeof body !== 'object') return [];
  return Object.entries(body as Record<string, unknown>).map(([key, value]) => {
    const id = /^\d+$/.test(key) ? Number(key) : key;
    return (value !== null && typeof value === 'object' ? { id, ...(value as object) } : { id, value }) as T;
  });
}

export async function* paginate<T>(http: HubexHttp, path: string, options: PageOptions = {}): AsyncIterableIterator<T> {
  const size = options.pageSize ?? 100;
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('pageSize must be a whole number from 1');
  let from = 1;
  for (;;) {
    const res = await http.call('GET', path, {
      query: options.query,
      headers: { range: `items=${from}-${from + size - 1}` },
      signal: options.signal,
    });
    const items = itemsOf<T>(res.body);
    for (const item of items) {
      yield item;
      options.signal?.throwIfAborted(); // a handler's timeout stops the walk, not only the next page
    }
    const range = parseContentRange(res.headers.get('content-range'));
    // No Content-Range: the whole list came in one answer.
    if (!range || items.length === 0 || range.till >= range.total) return;
    from = range.till + 1;
  }
}

/** The list's total, from `HEAD` (no items are sent). */
export async function count(http: HubexHttp, path: string, options: Omit<PageOptions, 'pageSize'> = {}): Promise<number> {
  const res = await http.call('HEAD', path, { query: options.query, headers: { range: 'items=1-1' }, signal: options.signal });
  const range = parseContentRange(res.headers.get('content-range'));
  if (!range) throw new Error(`HubEx answered HEAD ${path} without a Content-Range; it is not a list`);
  return range.total;
}
