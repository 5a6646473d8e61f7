// POST /hooks/hubex/:token — HubEx's webhook calls. Check the token, parse, normalise, store
// durably, then answer: 202 when something new was stored, 200 when all were duplicates.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody, HttpError } from '../src/errors.js';
import type { HubexEvent } from '../src/events/event.js';
import { parseBody } from '../src/events/parse-body.js';
import type { Normalizer } from '../src/events/normalize.js';
import type { IncomingEvent } from '../src/store/contract.js';
import { TokenVerifier } from '../src/webhook-tokens.js';

export interface WebhookRouteOptions {
  readonly tokens: readonly string[];
  /** Told of every stored or duplicate event (for the metrics). */
  readonly onEvents?: (events: readonly { name: string; duplicate: boolean }[]) => void;
  readonly normalize: Normalizer;
  /** What the store is told of an event: its tenant and the handlers it fans out to. */
  readonly fanOut: (event: HubexEvent) => IncomingEvent;
  readonly bodyLimit: number;
}

const JSON_TYPES = ['application/json', /^application\/[\w.+-]*\+json$/] as const;

const answerSchema = {
  type: 'object',
  properties: {
    accepted: { type: 'integer' },
    duplicates: { type: 'integer' },
    events: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, name: { type: 'string' }, duplicate: { type: 'boolean' } },
      },
    },
  },
} as const;

const webhookRoutes: FastifyPluginAsync<WebhookRouteOptions> = async (app, opts) => {
  const verifier = new TokenVerifier(opts.tokens);

  // Only JSON, kept as text: parseBody refuses what is hostile, and the text is the event's raw.
  app.removeAllContentTypeParsers();
  for (const type of JSON_TYPES) {
    app.addContentTypeParser(type, { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body));
  }

  // Runs before the body is read: an unknown caller never gets to send 1 MB.
  const authenticate = (request: FastifyRequest<{ Params: { token?: string } }>, _reply: unknown, done: (err?: Error) => void) => {
    done(refusal(request));
  };
  const refusal = (request: FastifyRequest<{ Params: { token?: string } }>): HttpError | undefined => {
    const candidates = presentedTokens(request);
    if (candidates.length === 0) {
      return new HttpError(
        'UNAUTHORIZED',
        'No webhook token: put it in the URL (/hooks/hubex/<token>), in X-Webhook-Token, or in Authorization: Bearer.',
        { headers: { 'www-authenticate': 'Bearer' } },
      );
    }
    let ok = false;
    for (const c of candidates) ok = verifier.verify(c) || ok;
    if (!ok) {
      return new HttpError(
        'UNAUTHORIZED',
        'Unknown webhook token: check the URL registered in HubEx against WEBHOOK_TOKENS (or the generated token).',
        { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
      );
    }
    return undefined;
  };

  const receive = async (request: FastifyRequest, reply: FastifyReply) => {
    const text = typeof request.body === 'string' ? request.body : '';
    const events = opts.normalize(parseBody(text), text);
    const result = await app.store.accept(events.map(opts.fanOut));
    request.ingest = { accepted: result.accepted, duplicates: result.duplicates };
    opts.onEvents?.(result.events);
    return reply.code(result.accepted > 0 ? 202 : 200).send(result);
  };

  for (const url of ['/hooks/hubex/:token', '/hooks/hubex']) {
    app.post(url, { onRequest: authenticate, schema: { response: { 200: answerSchema, 202: answerSchema } } }, receive);
    // A person who opens the URL in a browser learns what it is for, and nothing else.
    app.route({
      method: ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'],
      url,
      handler: async (request, reply) =>
        reply
          .code(405)
          .header('allow', 'POST')
          .send(errorBody('METHOD_NOT_ALLOWED', 'This is a HubEx webhook URL; HubEx sends events to it with POST.', request.id)),
    });
  }
};

function presentedTokens(request: FastifyRequest<{ Params: { token?: string } }>): string[] {
  const out: string[] = [];
  const fromPath = request.params.token;
  if (fromPath) out.push(fromPath);
  const header = request.headers['x-webhook-token'];
  if (typeof header === 'string' && header) out.push(header.trim());
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) out.push(m[1]!);
  }
  return out;
}

export default webhookRoutes;
