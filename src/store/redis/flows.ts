// Ordered and debounced deliveries on Redis, across every instance (flow.lua does the work, in
// one script per step). Ordered: a job joins its key's line at accept and, unless it is the head,
// is added parked (delayed); the worker runs a job only at the head of its line, and promotes the
// next head when one finishes. A parked job also wakes now and then on its own and looks (a head
// whose instance died before promoting the next is found finished then): slower, never stuck.
// Debounced: a job is added delayed by the period; when fetched, one that a later event of its
// key superseded is finished as collapsed into that one.
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Flow, scopedFlowKey } from '../contract.js';
import { type JobFlow, QUEUE_NAME } from './jobs.js';
import { luaScript } from './scripts.js';

type FlowCommands = Redis & { hxrFlow(...args: (string | number)[]): Promise<string> };

/** How long a parked job waits before it looks at its line by itself: longer the further back it stands, and the longer it has waited. */
export function parkMs(place: number, waitedMs = 0): number {
  return Math.min(Math.max(30_000 * (1 + Math.floor(place / 50)), Math.floor(waitedMs / 2)), 600_000);
}

export function jobFlowOf(handler: string, tenant: string, flow: Flow): JobFlow {
  return { kind: flow.kind, key: `${flow.kind}:${handler}:${scopedFlowKey(tenant, flow.key)}` };
}

export class RedisFlows {
  readonly #redis: FlowCommands;
  readonly #prefix: string;

  /** `redis`: a connection of the store's (the script is defined on it); `prefix`: the store's key prefix. */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis as FlowCommands;
    this.#prefix = prefix;
    if (!('hxrFlow' in redis)) redis.defineCommand('hxrFlow', { numberOfKeys: 0, lua: luaScript('flow') });
  }

  async #call<T>(op: string, now: number, items: readonly object[]): Promise<T[]> {
    if (items.length === 0) return [];
    const answer = await this.#redis.hxrFlow(op, `${this.#prefix}:`, `${this.#prefix}:${QUEUE_NAME}:`, now, JSON.stringify(items));
    const out = JSON.parse(answer) as T[] | Record<string, never>;
    return Array.isArray(out) ? out : [];
  }

  /** Before the jobs are added: how long each waits (an ordered one not at the head is parked; a debounced one waits its period). */
  async join(now: number, items: readonly { flow: JobFlow; job: string; periodMs?: number; maxWaitMs?: number }[]): Promise<number[]> {
    const places = await this.#call<number>(
      'join',
      now,
      items.map(({ flow, job, periodMs, maxWaitMs }) => ({ kind: flow.kind, key: flow.key, job, periodMs, maxWaitMs })),
    );
    return items.map(({ flow }, i) => (flow.kind === 'order' ? (places[i] === 0 ? 0 : parkMs(places[i]!)) : places[i]!));
  }

  /** Once the jobs are added: debounced ones become their key's latest; ordered ones parked but now at the head are answered, to promote. */
  async added(now: number, items: readonly { flow: JobFlow; job: string; seq: number; parked: boolean }[]): Promise<string[]> {
    const answers = await this.#call<number>(
      'added',
      now,
      items.map(({ flow, job, seq, parked }) => ({ kind: flow.kind, key: flow.key, job, seq, parked })),
    );
    return items.filter((_, i) => answers[i] === 1).map((it) => it.job);
  }

  /** An ordered job about to run: 0 when it is its line's head, else its place in the line. */
  async place(flow: JobFlow, job: string): Promise<number> {
    const [place] = await this.#call<number>('gate', Date.now(), [{ key: flow.key, job }]);
    return place ?? 0;
  }

  /** After a job of an ordered line finished: the head now, or undefined. */
  async next(flow: JobFlow): Promise<string | undefined> {
    const [head] = await this.#call<string>('next', Date.now(), [{ key: flow.key }]);
    return head || undefined;
  }

  /** A debounced job about to run: collapsed into a later one, or to run with the count of those collapsed into it. */
  async take(flow: JobFlow, job: string, seq: number): Promise<{ run: true; collapsed: number } | { run: false; into: string }> {
    const [answer] = await this.#call<[0 | 1, string | number]>('take', Date.now(), [{ key: flow.key, job, seq }]);
    if (!answer || answer[0] === 1) return { run: true, collapsed: Number(answer?.[1] ?? 0) };
    return { run: false, into: String(answer[1]) };
  }
}

/** Promotes parked jobs (delayed) to run now; one that is not delayed any more is left as it is. */
export async function promote(queue: Queue, ids: readonly string[]): Promise<void> {
  await Promise.all(ids.map((id) => new Job(queue, 'promote', {}, {}, id).promote().catch(() => {})));
}
