#!/usr/bin/env node
// The command line: `hubex-router <command>`. Human output by default, --json for scripts.
// Exit codes: 0 done, 1 the operation failed (the message says why), 2 a usage error, 78 bad
// configuration (as `serve`).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, type Config, loadConfig, readEnv } from '../config.js';
import { listDeliveries, OperationError, replayDeliveries, showDelivery } from '../delivery/operations.js';
import { KNOWN_EVENTS } from '../events/catalogue.js';
import { createLogger } from '../log.js';
import type { DeliveryRecord } from '../queue/deliveries.js';
import { describeStore, openStore, type Store } from '../queue/open-store.js';
import { resolveWebhookTokens } from '../webhook-tokens.js';
import { fixtureFor, FIXTURES } from './fixtures.js';
import { doctor, hubexClient, listWebhooks, NeedsConfigError, registerWebhook, webhooksTable } from './hubex-commands.js';
import { formatTable, when } from './format.js';

const USAGE = `hubex-router: a durable webhook receiver and handler runner for HubEx

Usage: hubex-router <command> [options]

Commands:
  serve                         run the router (the default)
  doctor                        check each part (configuration, store, HubEx token, X-Application-ID, webhook)
  token                         print the webhook URL to register in HubEx
  webhooks list                 HubEx's webhooks, with calls left and the last call (failures shown)
  webhooks register --events 40,41 [--stages 1,2] [--name NAME] [--url PUBLIC_URL] [--inactive]
                                create a HubEx webhook that calls this router (POST /MSG/Webhooks)
  webhooks activate|deactivate|delete ID
  events                        the event catalogue (ids and names handlers subscribe to)
  deliveries list               deliveries with their last error
      [--status pending|running|done|dead] [--handler NAME] [--event NAME] [--limit N] [--after ID]
  deliveries show ID            one delivery, its event and every attempt
  deliveries replay ID...       run deliveries again (dead or done ones), history kept
  deliveries replay --all-dead  every dead one [--handler NAME] [--event NAME]
  send FILE | -                 post a payload (a file, or stdin) to a running router
  send EVENT [--asset N] [--task N]   post a built-in sample (${Object.keys(FIXTURES).join(', ')})
      [--url URL]               the router's base URL (default http://127.0.0.1:PORT)

Options: --json (machine-readable output), --help.
Settings come from the environment and .env, as for serve (DATA_DIR, PORT, WEBHOOK_TOKENS, ...).
`;

class UsageError extends Error {}

// `hubex-router deliveries list | head`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const out = (s = '') => process.stdout.write(`${s}\n`);
const json = (v: unknown) => out(JSON.stringify(v, null, 2));

function config(): Config {
  return loadConfig(readEnv());
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const c = config();
  // A command beside a running router never merges event ids: that is the router's work.
  const store = openStore(c, { tool: true, log: createLogger('silent', undefined) });
  try {
    const health = await store.health();
    if (!health.ok) throw new OperationError(`${health.reason} (${describeStore(c)})`);
    return await fn(store);
  } finally {
    await store.close();
  }
}

type Options = Record<string, { type: 'string' | 'boolean' }>;

function parse(args: string[], options: Options = {}): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { json: { type: 'boolean' }, help: { type: 'boolean' }, ...options } });
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const num = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(v)}`);
  return Number(v);
};

async function deliveries(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const filters: Options = { status: { type: 'string' }, handler: { type: 'string' }, event: { type: 'string' } };
  if (sub === 'list') {
    const { values } = parse(rest, { ...filters, limit: { type: 'string' }, after: { type: 'string' } });
    const list = await withStore((s) =>
      listDeliveries(s, {
        status: values.status as string | undefined,
        handler: values.handler as string | undefined,
        eventName: values.event as string | undefined,
        limit: num(values.limit, 'limit'),
        afterId: values.after as string | undefined,
      }),
    );
    if (values.json) json(list);
    else if (list.length === 0) out('No deliveries match.');
    else out(formatTable(['id', 'status', 'handler', 'event', 'attempts', 'updated', 'last error'], list.map(row)));
    return 0;
  }
  if (sub === 'show') {
    const { values, positionals } = parse(rest);
    if (positionals.length !== 1) throw new UsageError('deliveries show takes one delivery id');
    const d = await withStore((s) => showDelivery(s, positionals[0]!));
    if (values.json) {
      json(d);
      return 0;
    }
    out(`delivery ${d.id}: ${d.status}, handler ${d.handler}, ${d.attempts} attempt(s) in this cycle, ${d.replays} replay(s)`);
    out(`event ${d.eventId} (${d.eventName}), received ${when(d.event.receivedAt)}`);
    if (d.dueAt !== null) out(`${d.status === 'running' ? 'leased until' : 'due'} ${when(d.dueAt)}`);
    if (d.lastError) out(`last error: ${d.lastError.errorClass}: ${d.lastError.message}${d.lastError.traceId ? ` (trace ${d.lastError.traceId})` : ''}`);
    out();
    out(
      formatTable(
        ['cycle', 'attempt', 'started', 'ms', 'outcome', 'error'],
        d.history.map((h) => [h.cycle, h.attempt, when(h.startedAt), h.finishedAt - h.startedAt, h.outcome, h.error ? `${h.error.errorClass}: ${h.error.message}` : '']),
      ),
    );
    out();
    out(`raw: ${d.event.raw}`);
    return 0;
  }
  if (sub === 'replay') {
    const { values, positionals } = parse(rest, { handler: filters.handler!, event: filters.event!, 'all-dead': { type: 'boolean' } });
    const all = values['all-dead'] === true;
    if (all === positionals.length > 0) throw new UsageError('deliveries replay takes delivery ids, or --all-dead (not both)');
    if (!all && (values.handler || values.event)) throw new UsageError('--handler and --event go with --all-dead');
    const progress = (p: { done: number; total: number }) => {
      if (values.json || p.total <= 500) return;
      process.stderr.write(`\rreplayed ${p.done} of ${p.total}${p.done === p.total ? '\n' : ''}`);
    };
    const result = await withStore((s) =>
      replayDeliveries(
        s,
        all ? { allDead: true, handler: values.handler as string | undefined, eventName: values.event as string | undefined } : { ids: positionals },
        progress,
      ),
    );
    if (values.json) json(result);
    else {
      out(`${result.replayed.length} deliver${result.replayed.length === 1 ? 'y' : 'ies'} pending again; a running router picks them up within seconds.`);
      if (result.skipped.length) out(`not replayed (no such delivery, or pending or running): ${result.skipped.join(', ')}`);
    }
    return !all && result.replayed.length === 0 ? 1 : 0;
  }
  throw new UsageError(`deliveries takes list, show or replay${sub ? `, not "${sub}"` : ''}`);
}

const row = (d: DeliveryRecord) => [
  d.id,
  d.status,
  d.handler,
  d.eventName,
  d.attempts,
  when(d.updatedAt),
  d.lastError ? `${d.lastError.errorClass}: ${d.lastError.message}`.slice(0, 80) : '',
];

const list = (v: unknown, name: string): number[] => {
  if (v === undefined) return [];
  if (typeof v !== 'string' || !/^\d+(,\d+)*$/.test(v.replace(/\s/g, ''))) throw new UsageError(`--${name} takes ids separated by commas, like 40,41`);
  return v.replace(/\s/g, '').split(',').map(Number);
};

async function webhooks(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const c = config();
  if (sub === 'list') {
    const { values } = parse(rest);
    const client = hubexClient(c);
    try {
      const hooks = await listWebhooks(client);
      if (values.json) json(hooks);
      else out(webhooksTable(hooks));
    } finally {
      client.close();
    }
    return 0;
  }
  if (sub === 'register') {
    const { values } = parse(rest, { events: { type: 'string' }, stages: { type: 'string' }, name: { type: 'string' }, url: { type: 'string' }, inactive: { type: 'boolean' } });
    const client = hubexClient(c);
    try {
      const id = await registerWebhook(client, c, {
        url: values.url as string | undefined,
        events: list(values.events, 'events'),
        stages: list(values.stages, 'stages'),
        name: (values.name as string | undefined) ?? 'hubex-router',
        active: values.inactive !== true,
      });
      if (values.json) json({ id });
      else out(`Webhook ${id} registered${values.inactive ? ' (inactive)' : ''}: HubEx now calls this router. Check it with: hubex-router webhooks list`);
    } finally {
      client.close();
    }
    return 0;
  }
  if (sub === 'activate' || sub === 'deactivate' || sub === 'delete') {
    const { values, positionals } = parse(rest);
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0]!)) throw new UsageError(`webhooks ${sub} takes one webhook id`);
    const id = Number(positionals[0]);
    const client = hubexClient(c);
    try {
      await client.msg.webhooks[sub](id);
    } finally {
      client.close();
    }
    if (values.json) json({ id, done: sub });
    else out(`Webhook ${id} ${sub === 'delete' ? 'deleted' : `${sub}d`}.`);
    return 0;
  }
  throw new UsageError(`webhooks takes list, register, activate, deactivate or delete${sub ? `, not "${sub}"` : ''}`);
}

async function runDoctor(args: string[]): Promise<number> {
  const { values } = parse(args);
  const checks = await doctor(config());
  if (values.json) json(checks);
  else {
    const width = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      out(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`);
      if (!c.ok && c.fix) out(`      ${''.padEnd(width)}  -> ${c.fix}`);
    }
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}

async function token(args: string[]): Promise<number> {
  const { values } = parse(args);
  const c = config();
  const { tokens, generatedFile } = resolveWebhookTokens(c);
  const base = c.publicUrl ?? `http://localhost:${c.port}`;
  const urls = tokens.map((t) => `${base}/hooks/hubex/${t}`);
  if (values.json) json({ urls, generated: generatedFile !== undefined });
  else {
    for (const u of urls) out(u);
    if (!c.publicUrl) process.stderr.write('(set PUBLIC_URL to the address HubEx reaches to print the URL to register)\n');
  }
  return 0;
}

function events(args: string[]): number {
  const { values } = parse(args);
  if (values.json) json(KNOWN_EVENTS);
  else {
    out(formatTable(['id', 'name', 'entity'], KNOWN_EVENTS.map((e) => [e.id, e.name, e.entity ?? ''])));
    out('\nOther ids arrive as event.<id>; handlers may subscribe to either form.');
  }
  return 0;
}

async function send(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { url: { type: 'string' }, asset: { type: 'string' }, task: { type: 'string' }, token: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('send takes one FILE, "-" for stdin, or an event name');
  const what = positionals[0]!;
  let body: string;
  if (what === '-') body = readFileSync(0, 'utf8');
  else if (Object.hasOwn(FIXTURES, what)) body = JSON.stringify(fixtureFor(what, { asset: num(values.asset, 'asset'), task: num(values.task, 'task') }));
  else {
    try {
      body = readFileSync(what, 'utf8');
    } catch (err) {
      throw new OperationError(`Cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a file, "-", or one of ${Object.keys(FIXTURES).join(', ')}.`);
    }
  }
  const c = config();
  const secret = (values.token as string | undefined) ?? resolveWebhookTokens(c).tokens[0]!;
  const base = ((values.url as string | undefined) ?? `http://127.0.0.1:${c.port}`).replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/hooks/hubex/${encodeURIComponent(secret)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new OperationError(`No router answered at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is it running? Use --url to point elsewhere.`);
  }
  const text = await res.text();
  if (values.json) out(text);
  else out(`${res.status} ${res.statusText}: ${text}`);
  return res.ok ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  const [command = 'serve', ...args] = argv;
  if (command === '--help' || command === '-h' || command === 'help' || args.includes('--help')) {
    out(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      await import('../main.js'); // runs the router; the process lives on
      return -1;
    case 'token':
      return token(args);
    case 'doctor':
      return runDoctor(args);
    case 'webhooks':
      return webhooks(args);
    case 'events':
      return events(args);
    case 'deliveries':
      return deliveries(args);
    case 'send':
      return send(args);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

try {
  const code = await run(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`hubex-router: ${err.message}\nRun hubex-router --help for the commands.\n`);
    process.exitCode = 2;
  } else if (err instanceof ConfigError || err instanceof NeedsConfigError) {
    process.stderr.write(`hubex-router: ${err.message}\n`);
    process.exitCode = 78;
  } else if (err instanceof OperationError) {
    process.stderr.write(`hubex-router: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`hubex-router: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
