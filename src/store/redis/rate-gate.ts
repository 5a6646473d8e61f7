// HubEx's rate limit counted across every instance on one Redis: the turns of the client's
// requests are taken in Redis (rate-take.lua), on Redis's clock, and a 429's pause is kept there
// (rate-pause.lua, rate-paused.lua) for all. If Redis cannot be reached, each instance spaces its own requests
// (the local gate) and says so once: calls go on, at worst at the limit times the instances.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LocalRateGate, type RateGate, type RateLimit, spacing } from '../../hubex/rate-gate.js';
import { sleep } from '../../hubex/retry-policy.js';
import { closeConnection, redisConnection } from './connection.js';
import { luaScript } from './scripts.js';

type GateCommands = Redis & {
  hxrRateTake(next: string, paused: string, spacingMs: number): Promise<number>;
  hxrRatePause(paused: string, ms: number): Promise<number>;
  hxrRatePaused(paused: string): Promise<number>;
};

export class RedisRateGate implements RateGate {
  readonly #redis: GateCommands;
  readonly #keys: { next: string; paused: string };
  readonly #spacingMs: number;
  readonly #local: LocalRateGate;
  readonly #log: Logger;
  #degraded = false;

  /** `prefix`: the store's key prefix; `name`: which client (one today, one per tenant later). */
  constructor(o: { url: string; prefix: string; name: string; limit: RateLimit; log: Logger }) {
    this.#redis = redisConnection(o.url, { failFast: true, commandTimeoutMs: 2000 }) as GateCommands;
    this.#redis.on('error', () => {}); // the store logs Redis going away
    this.#redis.defineCommand('hxrRateTake', { numberOfKeys: 2, lua: luaScript('rate-take') });
    this.#redis.defineCommand('hxrRatePause', { numberOfKeys: 1, lua: luaScript('rate-pause') });
    this.#redis.defineCommand('hxrRatePaused', { numberOfKeys: 1, lua: luaScript('rate-paused') });
    this.#keys = { next: `${o.prefix}:hubex-rate:${o.name}:next`, paused: `${o.prefix}:hubex-rate:${o.name}:paused` };
    this.#spacingMs = spacing(o.limit);
    this.#local = new LocalRateGate(o.limit);
    this.#log = o.log;
  }

  async take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    let waitMs: number;
    try {
      waitMs = await this.#redis.hxrRateTake(this.#keys.next, this.#keys.paused, this.#spacingMs);
      this.#degraded = false;
    } catch (err) {
      if (!this.#degraded) {
        this.#degraded = true;
        this.#log.warn(
          { err: { message: (err as Error).message } },
          'cannot reach Redis for the HubEx rate limit; spacing this instance alone',
        );
      }
      return this.#local.take(signal);
    }
    if (waitMs > 0) await sleep(waitMs, signal);
    // A 429 that came while it waited (here or on another instance) closes the gate for it too.
    for (let left = await this.#pausedFor(); left > 0; left = await this.#pausedFor()) await sleep(left, signal);
  }

  /** How long the gate stays closed by a 429, by Redis's clock (0 when open, or Redis away). */
  async #pausedFor(): Promise<number> {
    try {
      return await this.#redis.hxrRatePaused(this.#keys.paused);
    } catch {
      return 0;
    }
  }

  pause(ms: number): void {
    this.#local.pause(ms);
    this.#redis.hxrRatePause(this.#keys.paused, Math.min(Math.ceil(ms), 24 * 3600 * 1000)).catch(() => {});
  }

  close(): Promise<void> {
    return closeConnection(this.#redis);
  }
}
