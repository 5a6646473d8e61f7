// The admin API, under /admin, only when ADMIN_TOKEN is set (Authorization: Bearer, compared in
// constant time). It calls the same module as the command line (src/delivery/operations.ts), whose
// errors carry the code they are answered with (400 for a bad value, 404 for a missing thing).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError } from '../src/errors.js';
import {
  listDeliveries,
  listEvents,
  replayDeliveries,
  type ReplayRequest,
  showDelivery,
  showEvent,
  stats,
} from '../src/delivery/operations.js';
import { TokenVerifier } from '../src/webhook-tokens.js';

export interface AdminRouteOptions {
  readonly adminToken: string;
}

type Query = Record<string, string | undefined>;

const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (app, opts) => {
  const verifier = new TokenVerifier([opts.adminToken]);

  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    const token = typeof header === 'string' && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, '').trim() : '';
    if (!token || !verifier.verify(token)) {
      throw new HttpError('UNAUTHORIZED', 'The admin API needs Authorization: Bearer <ADMIN_TOKEN>.', {
        headers: { 'www-authenticate': 'Bearer realm="hubex-router admin"' },
      });
    }
  });

  const int = (v: string | undefined, name: string) => {
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v)) throw new HttpError('BAD_REQUEST', `The ${name} parameter must be a whole number, not ${JSON.stringify(v)}.`);
    return Number(v);
  };

  app.get('/admin/stats', async () => ({ deliveries: await stats(app.store) }));

  app.get<{ Querystring: Query }>('/admin/events', async (request) => {
    const q = request.query;
    const items = await listEvents(app.store, { name: q.name, afterSeq: int(q.after, 'after'), limit: int(q.limit, 'limit') });
    return { items, next: items.length > 0 ? items.at(-1)!.seq : null };
  });

  app.get<{ Params: { id: string } }>('/admin/events/:id', async (request) => showEvent(app.store, request.params.id));

  app.get<{ Querystring: Query }>('/admin/deliveries', async (request) => {
    const q = request.query;
    const items = await listDeliveries(app.store, {
      status: q.status,
      handler: q.handler,
      eventName: q.event,
      afterId: q.after === '' ? undefined : q.after,
      limit: int(q.limit, 'limit'),
    });
    return { items, next: items.length > 0 ? items.at(-1)!.id : null };
  });

  app.get<{ Params: { id: string } }>('/admin/deliveries/:id', async (request) => showDelivery(app.store, request.params.id));

  app.post<{ Params: { id: string } }>('/admin/deliveries/:id/replay', async (request) =>
    replayDeliveries(app.store, { ids: [request.params.id] }),
  );

  // {"ids": [1, 2]} or {"allDead": true, "handler"?: "...", "event"?: "..."}
  app.post<{ Body: unknown }>('/admin/deliveries/replay', async (request) => {
    const b = (request.body ?? {}) as Record<string, unknown>;
    let req: ReplayRequest;
    if (Array.isArray(b.ids) && b.allDead === undefined) {
      req = { ids: b.ids as (number | string)[] };
    } else if (b.allDead === true && b.ids === undefined) {
      const text = (v: unknown, name: string) => {
        if (v === undefined || typeof v === 'string') return v;
        throw new HttpError('BAD_REQUEST', `${name} must be a string.`);
      };
      req = { allDead: true, handler: text(b.handler, 'handler'), eventName: text(b.event, 'event') };
    } else {
      throw new HttpError('BAD_REQUEST', 'Send {"ids": [1, 2]} or {"allDead": true} (with "handler" or "event" to narrow it).');
    }
    return replayDeliveries(app.store, req);
  });
};

export default adminRoutes;
