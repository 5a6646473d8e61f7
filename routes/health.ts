// GET /healthz: the process is alive. GET /readyz: the store takes writes (503 otherwise).
import type { FastifyPluginAsync } from 'fastify';

const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const health = await app.inbox.health();
    if (health.ok) return { status: 'ready' };
    return reply.code(503).send({ status: 'unavailable', reason: health.reason });
  });
};

export default healthRoutes;
