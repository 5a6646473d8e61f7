// The two back ends as router settings, for a test file that runs the app on each: SQLite (in the
// app's temporary folder) and Redis (a redis-server of the file's own, started before its tests
// when the machine has one, a freshly emptied database of it for each app).
import { afterAll, beforeAll } from 'vitest';
import { hasRedis, type RedisServer, startRedis } from './redis.js';

export interface Backends {
  /** Each back end, its settings (made anew per call), and whether its tests are skipped here. */
  readonly list: readonly [
    { readonly name: 'sqlite'; readonly env: () => Promise<Record<string, string>>; readonly skip: false },
    { readonly name: 'redis'; readonly env: () => Promise<Record<string, string>>; readonly skip: boolean },
  ];
  /** A URL of an emptied database of the file's redis-server (16 databases, used in turn). */
  freshRedisUrl(): Promise<string>;
}

/** Call at the top of a test file: registers the beforeAll and afterAll that start and stop its redis-server. */
export function backendsForFile(): Backends {
  let redis: RedisServer | undefined;
  let n = 0;
  beforeAll(async () => {
    if (hasRedis) redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });
  const freshRedisUrl = async () => {
    const url = `${redis!.url}/${++n % 16}`;
    const { Redis } = await import('ioredis');
    const r = new Redis(url);
    await r.flushdb();
    r.disconnect();
    return url;
  };
  return {
    list: [
      { name: 'sqlite', env: () => Promise.resolve({}), skip: false },
      { name: 'redis', env: async () => ({ QUEUE: 'redis', REDIS_URL: await freshRedisUrl() }), skip: !hasRedis },
    ],
    freshRedisUrl,
  };
}
