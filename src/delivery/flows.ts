// A handler's orderBy and debounce, applied at fan-out: the key each delivery of an event is
// ordered or debounced by, handed to the store with the event (src/store/contract.ts, Flow). The
// key is the handler's code run on what a sender sent: it is bounded here before it reaches the
// store, and a key function that throws or answers something else leaves the event out of the
// flow (the delivery runs at once, unordered), said in the log.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Flow } from '../store/contract.js';
import type { HubexEvent } from '../events/event.js';
import type { FlowKey, Handler } from './define-handler.js';

/** Keys longer than this are kept as their SHA-256 (two keys that long meeting is as unlikely as a hash collision). */
const MAX_KEY_LENGTH = 200;

export type FlowProblem = { readonly handler: string; readonly field: 'orderBy' | 'debounce.key'; readonly problem: string };

/** The flows of an event's deliveries, by handler; `onProblem` hears of a key function that failed. */
export function flowsOf(
  handlers: readonly Handler[],
  event: HubexEvent,
  onProblem: (p: FlowProblem) => void,
): ReadonlyMap<string, Flow> | undefined {
  let flows: Map<string, Flow> | undefined;
  for (const h of handlers) {
    const fn = h.orderBy ?? h.debounce?.key;
    if (!fn) continue;
    const field = h.orderBy ? 'orderBy' : 'debounce.key';
    let key: string | null | undefined;
    try {
      const value: unknown = fn(event);
      if (isThenable(value)) {
        // An async key function: its promise is no key, and its rejection must not go unhandled.
        void Promise.resolve(value).catch(() => {});
        onProblem({
          handler: h.name,
          field,
          problem: 'it returned a Promise: key functions run as the webhook is answered, and must be synchronous',
        });
        continue;
      }
      key = keyOf(value as FlowKey);
    } catch (err) {
      onProblem({
        handler: h.name,
        field,
        problem: `it threw: ${err instanceof Error ? err.message.slice(0, 200) : 'a value that is not an Error'}`,
      });
      continue;
    }
    if (key === null) {
      onProblem({ handler: h.name, field, problem: 'it returned neither a string nor a number (nor null or undefined)' });
      continue;
    }
    if (key === undefined) continue; // no key: the event is outside the flow
    flows ??= new Map();
    const d = h.debounce;
    flows.set(h.name, d ? { kind: 'debounce', key, periodMs: d.periodMs, maxWaitMs: d.maxWaitMs } : { kind: 'order', key });
  }
  return flows;
}

/** A key as stored: a string, well formed and bounded. Undefined: no key; null: a value no key can be made of. */
function keyOf(v: FlowKey | unknown): string | undefined | null {
  if (v === null || v === undefined) return undefined;
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else return null;
  s = s.toWellFormed();
  return s.length > MAX_KEY_LENGTH ? `sha256:${createHash('sha256').update(s).digest('hex')}` : s;
}

/** Logs key functions that fail, at most once a minute per handler and field (the handlers are a bounded set). */
export function flowProblemLog(log: Logger): (p: FlowProblem) => void {
  const last = new Map<string, number>();
  return (p) => {
    const id = `${p.handler}/${p.field}`;
    const now = performance.now();
    if (now - (last.get(id) ?? Number.NEGATIVE_INFINITY) < 60_000) return;
    last.set(id, now);
    log.warn(
      { handler: p.handler, field: p.field, problem: p.problem },
      `the handler's ${p.field} gave no key; its delivery runs outside the flow (at once, unordered)`,
    );
  };
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
