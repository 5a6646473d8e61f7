// Connections to REDIS_URL: fail fast for the calls whose caller must know now (webhooks answer
// 503), patient for BullMQ's worker (it waits for Redis to come back).
import { Redis } from 'ioredis';

/**
 * An ioredis connection. `failFast`: no offline queue and a command timeout; otherwise BullMQ's
 * worker settings (commands wait for Redis).
 */
export function redisConnection(url: string, o: { failFast: boolean; commandTimeoutMs?: number }): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: o.failFast ? 1 : null,
    enableOfflineQueue: !o.failFast,
    ...(o.failFast && o.commandTimeoutMs ? { commandTimeout: o.commandTimeoutMs } : {}),
    // Reconnect forever, at most a second apart: Redis restarts, instances keep going.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: false,
  });
}

/**
 * Closes a connection with QUIT, so that commands still on their way are answered rather than
 * rejected; a Redis that is away holds this up for a second at most.
 */
export async function closeConnection(connection: Redis): Promise<void> {
  // Not connected (Redis away, a refused password): nothing is on its way; QUIT would only wait.
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([connection.quit().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 1000)))]);
  clearTimeout(timer);
  connection.disconnect();
}
