// Per-handler concurrency on Redis, across every instance: a run takes a slot of its handler
// (slot-take.lua) before it starts and gives it back when its job is recorded. Slots are leased,
// renewed while held (slot-renew.lua), so that those of an instance that died free themselves.
// If Redis cannot be reached for a slot, the run waits (its job goes back to the queue).
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeConnection, redisConnection } from './connection.js';
import { luaScript } from './scripts.js';

type SlotCommands = Redis & {
  hxrSlotTake(key: string, id: string, limit: number, leaseMs: number): Promise<number>;
  hxrSlotRenew(...args: (string | number)[]): Promise<number>;
};

export class HandlerSlots {
  readonly #redis: SlotCommands;
  readonly #o: { readonly prefix: string; readonly leaseMs: number; readonly log: Logger };
  /** The slots this instance holds: job id -> handler. */
  readonly #held = new Map<string, string>();
  /** Misses in a row by handler (the limited handlers only: a bounded map). */
  readonly #misses = new Map<string, number>();
  readonly #renewal: NodeJS.Timeout;

  constructor(
    o: { readonly url: string; readonly prefix: string; readonly leaseMs: number; readonly log: Logger },
    readonly limits: ReadonlyMap<string, number>,
  ) {
    this.#o = o;
    this.#redis = redisConnection(o.url, { failFast: true, commandTimeoutMs: 2000 }) as SlotCommands;
    this.#redis.on('error', () => {}); // the store logs Redis going away
    this.#redis.defineCommand('hxrSlotTake', { numberOfKeys: 1, lua: luaScript('slot-take') });
    this.#redis.defineCommand('hxrSlotRenew', { lua: luaScript('slot-renew') });
    this.#renewal = setInterval(() => void this.#renew(), Math.max(Math.floor(o.leaseMs / 3), 100));
    this.#renewal.unref();
  }

  /** Whether the job now holds a slot of its handler (false: the handler is at its limit, or Redis is away). */
  async take(handler: string, id: string): Promise<boolean> {
    let got = false;
    try {
      got = (await this.#redis.hxrSlotTake(this.#key(handler), id, this.limits.get(handler)!, this.#o.leaseMs)) === 1;
    } catch {
      // Redis away, or the answer lost after the script ran: wait, as if full, and take back a
      // slot the script may have given (else it would hold one until its lease ends).
      this.#redis.zrem(this.#key(handler), id).catch(() => {});
    }
    if (got) {
      this.#held.set(id, handler);
      this.#misses.delete(handler);
    } else this.#misses.set(handler, Math.min((this.#misses.get(handler) ?? 0) + 1, 5));
    return got;
  }

  /** How long a job that found its handler full waits before it is tried again: 100 ms doubling per miss in a row, to 2 s, jittered. */
  waitMs(handler: string): number {
    const ceiling = Math.min(2000, 100 * 2 ** (this.#misses.get(handler) ?? 0));
    return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  release(handler: string, id: string): void {
    this.#held.delete(id);
    this.#redis.zrem(this.#key(handler), id).catch(() => {}); // else its lease ends it
  }

  async close(): Promise<void> {
    clearInterval(this.#renewal);
    await closeConnection(this.#redis);
  }

  #key(handler: string): string {
    return `${this.#o.prefix}:slots:${handler}`;
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const entries = [...this.#held];
    try {
      await this.#redis.hxrSlotRenew(
        entries.length,
        ...entries.map(([, h]) => this.#key(h)),
        this.#o.leaseMs,
        ...entries.map(([id]) => id),
      );
    } catch (err) {
      this.#o.log.warn({ err: { message: (err as Error).message } }, "could not renew the handlers' concurrency slots");
    }
  }
}
