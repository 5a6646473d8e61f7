// GET /metrics: Prometheus text format (docs/metrics.md). Restrict it at the proxy if it must not
// be public: it holds counts and handler names, no event data and no secret.
import type { FastifyPluginAsync } from 'fastify';

const metricsRoutes: FastifyPluginAsync = async (app) => {
  app.get('/metrics', async (_request, reply) => {
    const body = await app.metrics.registry.metrics();
    return reply.type(app.metrics.registry.contentType).send(body);
  });
};

export default metricsRoutes;
