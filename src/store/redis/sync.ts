// What the reconciler keeps in Redis (src/sync): its cursors, its lease (one instance polls at a
// time), and when each task last had a pushed event, a sorted set per tenant that accept.lua
// writes (task id, receive time) and trims to a week.
import type { Redis } from 'ioredis';
import { luaScript } from './scripts.js';

type LeaseCommand = (key: string, op: 'take' | 'release', holder: string, ms: number) => Promise<number>;

export class RedisSync {
  constructor(
    private readonly redis: Redis,
    private readonly key: (suffix: string) => string,
  ) {
    redis.defineCommand('hxrLease', { numberOfKeys: 1, lua: luaScript('lease') });
  }

  readCursor(tenant: string, name: string): Promise<string | null> {
    return this.redis.get(this.key(`cursor:${tenant}:${name}`));
  }

  async writeCursor(tenant: string, name: string, value: string): Promise<void> {
    await this.redis.set(this.key(`cursor:${tenant}:${name}`), value);
  }

  async lease(name: string, holder: string, ms: number): Promise<boolean> {
    return (await this.#lease(this.key(`lease:${name}`), 'take', holder, Math.max(1, Math.round(ms)))) === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#lease(this.key(`lease:${name}`), 'release', holder, 0);
  }

  async lastPushedTasks(tenant: string, taskIDs: readonly number[], sinceMs: number): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (taskIDs.length === 0) return out;
    // ZSCORE in one round trip, not ZMSCORE: that needs Redis 6.2, BullMQ only 5.
    const key = this.key(`pushed:${tenant}`);
    const pipeline = this.redis.pipeline();
    for (const id of taskIDs) pipeline.zscore(key, String(id));
    const answers = (await pipeline.exec()) ?? [];
    answers.forEach(([err, score], i) => {
      if (err) throw err;
      if (score !== null && Number(score) >= sinceMs) out.set(taskIDs[i]!, Number(score));
    });
    return out;
  }

  #lease: LeaseCommand = (key, op, holder, ms) => (this.redis as unknown as { hxrLease: LeaseCommand }).hxrLease(key, op, holder, ms);
}
