// The commands that talk to HubEx: `webhooks list|register|activate|deactivate|delete` (MSG API)
// and `doctor`, which checks each part and says what to do when one fails.
import { type Config, configWarnings, maskUrl } from '../config.js';
import { createHubexClient, type HubexClient } from '../hubex/client.js';
import { HubexApiError } from '../hubex/errors.js';
import { describeStore, openStore } from '../queue/open-store.js';
import { createLogger } from '../log.js';
import { resolveWebhookTokens } from '../webhook-tokens.js';
import { formatTable } from './format.js';

/** Not runnable as configured (exit 78): the message says which variable to set. */
export class NeedsConfigError extends Error {}

export function hubexClient(config: Config): HubexClient {
  if (!config.hubex.serviceToken && !config.hubex.accessToken) {
    throw new NeedsConfigError('Set HUBEX_SERVICE_TOKEN (the API user\'s service token) or HUBEX_ACCESS_TOKEN to talk to HubEx.');
  }
  return createHubexClient({ ...config.hubex, retries: 1 });
}

interface WebhookView {
  id: number;
  name: string;
  active: boolean;
  events: number[];
  taskStages: number[];
  uri: string;
  callsRemaining: number | null;
  lastCall: { started: string | null; completed: string | null; exception: string | null } | null;
}

const ids = (v: unknown): number[] =>
  Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? x : Number((x as { id?: unknown }).id))).filter(Number.isFinite) : [];

/** A webhook as HubEx lists it, with the token in its URI hidden (it is a secret). */
function view(w: Record<string, unknown>, reveal: boolean): WebhookView {
  const last = w.lastCall as Record<string, unknown> | null | undefined;
  const uri = String(w.uri ?? '');
  return {
    id: Number(w.id),
    name: String(w.name ?? ''),
    active: w.isActive === true,
    events: ids(w.events),
    taskStages: ids(w.taskStages),
    uri: reveal ? uri : uri.replace(/(\/hooks\/hubex\/)[^/?#]+/, '$1[REDACTED]'),
    callsRemaining: typeof w.callsRemaining === 'number' ? w.callsRemaining : null,
    lastCall: last
      ? { started: (last.started as string) ?? null, completed: (last.completed as string) ?? null, exception: (last.exception as string) ?? null }
      : null,
  };
}

/**
 * Every webhook with its details. HubEx's list (ListResult) has the id, name, isActive,
 * callsRemaining and lastCall but not the uri, events or stages: those come from a GET of each.
 */
async function webhookDetails(client: HubexClient): Promise<Record<string, unknown>[]> {
  const listed: Record<string, unknown>[] = [];
  for await (const w of client.msg.webhooks.list()) listed.push(w as Record<string, unknown>);
  const out: Record<string, unknown>[] = [];
  // A few at a time: an installation has a handful of webhooks, seldom hundreds.
  for (let i = 0; i < listed.length; i += 8) {
    const batch = listed.slice(i, i + 8);
    const details = await Promise.all(batch.map((w) => client.msg.webhooks.get(Number(w.id))));
    batch.forEach((w, j) => out.push({ ...(details[j] as Record<string, unknown>), ...w, lastCall: w.lastCall ?? (details[j] as Record<string, unknown>).lastCall }));
  }
  return out;
}

export async function listWebhooks(client: HubexClient): Promise<WebhookView[]> {
  return (await webhookDetails(client)).map((w) => view(w, false));
}

export function webhooksTable(list: readonly WebhookView[]): string {
  if (list.length === 0) return 'No webhooks in HubEx. Register one: hubex-router webhooks register --events 40,41';
  return formatTable(
    ['id', 'name', 'active', 'events', 'calls left', 'last call', 'uri'],
    list.map((w) => [
      w.id,
      w.name,
      w.active ? 'yes' : 'no',
      w.events.join(','),
      w.callsRemaining ?? '',
      w.lastCall ? (w.lastCall.exception ? `FAILED: ${w.lastCall.exception.slice(0, 60)}` : (w.lastCall.completed ?? w.lastCall.started ?? '')) : 'never',
      w.uri,
    ]),
  );
}

/** The webhook URL of this router with its first token: what HubEx is told to call. */
export function routerUrl(config: Config, base?: string): string {
  const root = (base ?? config.publicUrl)?.replace(/\/+$/, '');
  if (!root) throw new NeedsConfigError('Set PUBLIC_URL (or pass --url) to the https:// address HubEx reaches this router at.');
  return `${root}/hooks/hubex/${resolveWebhookTokens(config).tokens[0]}`;
}

export async function registerWebhook(
  client: HubexClient,
  config: Config,
  o: { url?: string | undefined; events: number[]; stages: number[]; name: string; active: boolean },
): Promise<number> {
  if (o.events.length === 0) throw new NeedsConfigError('Name the events to send with --events (ids, e.g. 40,41; see hubex-router events).');
  return client.msg.webhooks.create({ name: o.name, uri: routerUrl(config, o.url), events: o.events, taskStages: o.stages, isActive: o.active });
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do when it failed. */
  readonly fix?: string;
}

/** Each part, in order; a part that cannot be checked because an earlier one failed says so. */
export async function doctor(config: Config): Promise<Check[]> {
  const warnings = configWarnings(config);
  const checks: Check[] = [
    warnings.length === 0
      ? { name: 'configuration', ok: true, detail: `valid (DATA_DIR ${config.dataDir})` }
      : { name: 'configuration', ok: false, detail: warnings.join(' '), fix: 'see docs/deploy.md, "Behind nginx or Caddy"' },
  ];
  const store = openStore(config, { tool: true, log: createLogger('silent') });
  const health = await store.health();
  await store.close();
  const redis = config.queue === 'redis';
  checks.push(
    health.ok
      ? { name: 'store', ok: true, detail: redis ? `Redis takes writes (${describeStore(config)})` : 'the SQLite file takes writes' }
      : {
          name: 'store',
          ok: false,
          detail: health.reason,
          fix: redis ? `check that Redis runs and that ${describeStore(config)} reaches it` : `make ${config.dataDir} writable by this user, with room on its disk`,
        },
  );
  let tokens: readonly string[] = [];
  try {
    tokens = resolveWebhookTokens(config).tokens;
    checks.push({ name: 'webhook token', ok: true, detail: config.webhookTokens ? `${tokens.length} from WEBHOOK_TOKENS` : 'generated, in DATA_DIR' });
  } catch (err) {
    checks.push({ name: 'webhook token', ok: false, detail: (err as Error).message, fix: 'set WEBHOOK_TOKENS, or make DATA_DIR writable' });
  }
  if (!config.hubex.serviceToken && !config.hubex.accessToken) {
    checks.push({ name: 'hubex token', ok: false, detail: 'no HUBEX_SERVICE_TOKEN or HUBEX_ACCESS_TOKEN', fix: "create an API user in HubEx, download its service token, set HUBEX_SERVICE_TOKEN" });
    return checks;
  }
  const client = createHubexClient({ ...config.hubex, retries: 0 });
  try {
    try {
      await client.http.tokens.get();
      checks.push({ name: 'hubex token', ok: true, detail: `accepted by ${maskUrl(config.hubex.baseUrl)}` });
    } catch (err) {
      checks.push({ name: 'hubex token', ok: false, detail: (err as Error).message, fix: 'check HUBEX_SERVICE_TOKEN (shown once when the API user was made) and HUBEX_BASE_URL' });
      return checks;
    }
    try {
      const events = await client.common.events();
      checks.push({ name: 'x-application-id', ok: true, detail: `${config.hubex.applicationId} accepted (the catalogue lists ${events.length} events)` });
    } catch (err) {
      const forbidden = err instanceof HubexApiError && err.status === 403;
      checks.push({
        name: 'x-application-id',
        ok: false,
        detail: (err as Error).message,
        fix: forbidden ? "check HUBEX_APPLICATION_ID (5 = Api) and the API user's roles" : 'check HUBEX_BASE_URL and the network',
      });
      return checks;
    }
    try {
      const hooks = await webhookDetails(client);
      const mine = hooks.filter((w) => tokens.some((t) => String(w.uri ?? '').endsWith(`/hooks/hubex/${t}`)));
      const here = config.publicUrl ? mine.filter((w) => String(w.uri).startsWith(`${config.publicUrl}/`)) : mine;
      const active = here.filter((w) => w.isActive === true);
      if (active.length > 0) {
        const failing = active.filter((w) => (w.lastCall as { exception?: string } | null)?.exception);
        checks.push({
          name: 'webhook registered',
          ok: failing.length === 0,
          detail: `${active.length} active webhook(s) call this router${failing.length ? `; the last call of ${failing.map((w) => w.id).join(', ')} failed` : ''}`,
          ...(failing.length ? { fix: 'look at hubex-router webhooks list: is the router reachable from HubEx at that URL?' } : {}),
        });
      } else {
        checks.push({
          name: 'webhook registered',
          ok: false,
          detail: here.length ? 'a webhook points here but is not active' : 'no HubEx webhook points at this router',
          fix: here.length ? `hubex-router webhooks activate ${here[0]!.id}` : 'hubex-router webhooks register --events 40,41 (with PUBLIC_URL set)',
        });
      }
    } catch (err) {
      checks.push({ name: 'webhook registered', ok: false, detail: (err as Error).message, fix: "the API user needs the right to read webhooks (MSG)" });
    }
  } finally {
    client.close();
  }
  return checks;
}
