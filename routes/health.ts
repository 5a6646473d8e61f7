// GET /healthz: the process is alive. GET /readyz: the store takes writes (503 otherwise).
// The readiness probe makes a real (synced) write; it needs no token and is exempt from the
// limits, so at most one runs at a time and its answer serves every probe for a second.
import type { FastifyPluginAsync } from 'fastify';
import type { Health } from '../src/store/contract.js';

export interface HealthRouteOptions {
  /** How long one probe's answer is reused, in ms. Default 1000. */
  readonly readyCacheMs?: number;
  /** A probe that takes longer answers "unavailable" (and the next one starts afresh). Default 5000. */
  readonly probeTimeoutMs?: number;
}

const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, opts) => {
  const cacheMs = opts.readyCacheMs ?? 1000;
  const timeoutMs = opts.probeTimeoutMs ?? 5000;
  // A monotonic clock: an answer cannot outlive its second when the wall clock steps back.
  let last: { readonly at: number; readonly health: Promise<Health> } | undefined;
  let probing = false;
  const ready = (): Promise<Health> => {
    // A probe still under way after the cache time is shared too: never two at once.
    if (last && (probing || performance.now() - last.at < cacheMs)) return last.health;
    probing = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Health>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: `the store did not answer a write within ${timeoutMs} ms` }), timeoutMs);
    });
    const health = Promise.race([app.store.health(), timedOut]).finally(() => {
      clearTimeout(timer);
      probing = false;
    });
    last = { at: performance.now(), health };
    return health;
  };

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const health = await ready();
    if (health.ok) return { status: 'ready' };
    return reply.code(503).send({ status: 'unavailable', reason: health.reason });
  });
};

export default healthRoutes;
