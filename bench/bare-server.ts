// The baseline for bench/ingest.ts: bare Fastify 5 on the same route shape, parsing the same
// JSON with Fastify's default parser, storing nothing, logging nothing, answering 202.
// Run: PORT=3001 HOST=127.0.0.1 node --import tsx bench/bare-server.ts
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? '127.0.0.1';

const app = Fastify({ logger: false });

app.post('/hooks/hubex/:token', async (request, reply) => {
  const body = request.body as { EventID?: unknown } | null;
  return reply.code(202).send({ accepted: 1, duplicates: 0, eventID: body?.EventID ?? null });
});

await app.listen({ port, host });
process.stderr.write(`bare fastify listening on ${host}:${port}\n`);

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
