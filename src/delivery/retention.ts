// Retention: finished events and deliveries older than RETENTION_DAYS are deleted in the
// background (in slices, so that webhooks never wait long behind it). Dead letters, and the
// events they belong to, stay until they are replayed or purged on purpose.
import type { Logger } from 'pino';
import type { Store } from '../store/contract.js';

const DAY_MS = 86_400_000;

export interface Retention {
  /** Prunes now; resolves with what was deleted. */
  runOnce(): Promise<{ events: number; deliveries: number }>;
  stop(): void;
}

export function startRetention(
  store: Pick<Store, 'prune'>,
  days: number,
  log: Logger,
  options: { everyMs?: number; firstAfterMs?: number; now?: () => number } = {},
): Retention | undefined {
  if (days <= 0) return undefined; // RETENTION_DAYS=0 keeps everything
  const { everyMs = 3_600_000, firstAfterMs = 60_000, now = Date.now } = options;
  const runOnce = async () => {
    const result = await store.prune(now() - days * DAY_MS);
    if (result.events > 0 || result.deliveries > 0) log.info({ ...result, retentionDays: days }, 'pruned finished events');
    return result;
  };
  const tick = () => void runOnce().catch((err: unknown) => log.warn({ err }, 'retention could not prune; it tries again later'));
  const first = setTimeout(tick, firstAfterMs);
  const timer = setInterval(tick, everyMs);
  first.unref();
  timer.unref();
  return {
    runOnce,
    stop: () => {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
