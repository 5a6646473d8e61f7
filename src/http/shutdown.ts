// From the first moment of close() on, new requests are refused with 503 SHUTTING_DOWN (and the
// connection closed): nothing new is acknowledged while the router stops.
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../errors.js';

export function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(
      new HttpError('SHUTTING_DOWN', 'The router is stopping, so nothing was acknowledged; HubEx will call again.', {
        headers: { 'retry-after': '5' },
      }),
    );
  });
}
