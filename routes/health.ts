// GET /healthz: the process is alive. GET /readyz: the store takes writes (503 otherwise).
// The readiness probe makes a real (synced) write; it needs no token and is exempt from the
// limits, so at most one runs at a time and its answer serves every probe for a second.
import type { FastifyPluginAsync } from 'fastify';
import type { Health } from '../src/queue/inbox.js';

export interface HealthRouteOptions {
  /** How long one probe's answer is reused, in ms. Default 1000. */
  readonly readyCacheMs?: number;
  readonly now?: () => number;
}

const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, opts) => {
  const cacheMs = opts.readyCacheMs ?? 1000;
  const now = opts.now ?? Date.now;
  let last: { readonly at: number; readonly health: Promise<Health> } | undefined;
  let probing = false;
  const ready = (): Promise<Health> => {
    // A probe still under way after the cache time is shared too: never two at once.
    if (last && (probing || now() - last.at < cacheMs)) return last.health;
    probing = true;
    const health = app.inbox.health().finally(() => {
      probing = false;
    });
    last = { at: now(), health };
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
