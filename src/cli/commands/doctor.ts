// `doctor`: checks each part in order and says what to do about one that fails (exit 1 then).
import { type Config, configWarnings, maskUrl } from '../../config.js';
import { handlerFolders, loadHandlers } from '../../delivery/loader.js';
import { HandlerRegistry } from '../../delivery/registry.js';
import { EventCatalogue } from '../../events/catalogue.js';
import { loadCatalogue } from '../../events/load-catalogue.js';
import { createHubexClient, type EventCatalogueItem, type HubexClient } from '../../hubex/client.js';
import { createLogger } from '../../observability/log.js';
import { HubexApiError } from '../../hubex/errors.js';
import { describeStore } from '../../store/open.js';
import { resolveWebhookTokens } from '../../webhook-tokens.js';
import { parse } from '../args.js';
import { openToolStore, readConfig } from '../environment.js';
import { webhookDetails } from '../hubex-webhooks.js';
import { DEFAULT_TENANT } from '../../store/contract.js';
import { hideTokens, isOwnWebhook } from '../../sync/watchdog.js';
import { json, out } from '../output.js';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do when it failed. */
  readonly fix?: string;
}

export async function doctor(args: string[]): Promise<number> {
  const { values } = parse(args);
  const checks = await runChecks(readConfig());
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

/** Each part, in order; a part that cannot be checked because an earlier one failed says so. */
async function runChecks(config: Config): Promise<Check[]> {
  const warnings = configWarnings(config);
  const checks: Check[] = [
    warnings.length === 0
      ? { name: 'configuration', ok: true, detail: `valid (DATA_DIR ${config.dataDir})` }
      : { name: 'configuration', ok: false, detail: warnings.join(' '), fix: 'see docs/deploy.md, "Behind nginx or Caddy"' },
  ];
  const store = openToolStore(config);
  const health = await store.health();
  const cursor = health.ok ? await store.readCursor(DEFAULT_TENANT, 'tasks').catch(() => null) : null;
  await store.close();
  const redis = config.queue === 'redis';
  checks.push(
    health.ok
      ? { name: 'store', ok: true, detail: redis ? `Redis takes writes (${describeStore(config)})` : 'the SQLite file takes writes' }
      : {
          name: 'store',
          ok: false,
          detail: health.reason,
          fix: redis
            ? `check that Redis runs and that ${describeStore(config)} reaches it`
            : `make ${config.dataDir} writable by this user, with room on its disk`,
        },
  );
  let tokens: readonly string[] = [];
  try {
    tokens = resolveWebhookTokens(config).tokens;
    checks.push({
      name: 'webhook token',
      ok: true,
      detail: config.webhookTokens ? `${tokens.length} from WEBHOOK_TOKENS` : 'generated, in DATA_DIR',
    });
  } catch (err) {
    checks.push({ name: 'webhook token', ok: false, detail: (err as Error).message, fix: 'set WEBHOOK_TOKENS, or make DATA_DIR writable' });
  }
  let events: readonly EventCatalogueItem[] | undefined;
  if (!config.hubex.serviceToken && !config.hubex.accessToken) {
    checks.push({
      name: 'hubex token',
      ok: false,
      detail: 'no HUBEX_SERVICE_TOKEN or HUBEX_ACCESS_TOKEN',
      fix: 'create an API user in HubEx, download its service token, set HUBEX_SERVICE_TOKEN',
    });
  } else {
    const client = createHubexClient({ ...config.hubex, retries: 0 });
    try {
      events = await hubexChecks(client, config, tokens, checks);
    } finally {
      client.close();
    }
    checks.push(reconcileCheck(config, cursor));
  }
  checks.push(await handlersCheck(config, events));
  return checks;
}

/** Whether the handlers load, and whether each name they subscribe to is an event's (with HubEx's catalogue when it was read). */
async function handlersCheck(config: Config, events: readonly EventCatalogueItem[] | undefined): Promise<Check> {
  let handlers;
  try {
    handlers = await loadHandlers(handlerFolders(config.handlersDir));
  } catch (err) {
    return { name: 'handlers', ok: false, detail: (err as Error).message, fix: 'fix the module it names (docs/handlers.md)' };
  }
  const catalogue = new EventCatalogue();
  if (events) await loadCatalogue(catalogue, { common: { events: () => Promise.resolve(events) } }, silentLogger());
  const unknown = new HandlerRegistry(handlers, catalogue).unknownSubscriptions();
  const enabled = handlers.filter((h) => h.enabled !== false).length;
  if (unknown.length === 0)
    return { name: 'handlers', ok: true, detail: `${enabled} enabled of ${handlers.length} loaded; every name they subscribe to is known` };
  return {
    name: 'handlers',
    ok: false,
    detail: `subscribed to names no event has: ${unknown
      .slice(0, 20)
      .map((u) => `${u.handler} -> "${u.name}"`)
      .join(
        ', ',
      )}${unknown.length > 20 ? `, and ${unknown.length - 20} more` : ''}${events ? '' : " (HubEx's catalogue could not be read)"}`,
    fix: events
      ? 'check the spelling against `hubex-router events`; numeric event ids always work'
      : "names other than the asset events come from HubEx's catalogue: fix the HubEx checks above, or subscribe by numeric id",
  };
}

/** The token, X-Application-ID and webhook checks, each only after the one before it passed. */
async function hubexChecks(
  client: HubexClient,
  config: Config,
  tokens: readonly string[],
  checks: Check[],
): Promise<readonly EventCatalogueItem[] | undefined> {
  try {
    await client.http.tokens.get();
    checks.push({ name: 'hubex token', ok: true, detail: `accepted by ${maskUrl(config.hubex.baseUrl)}` });
  } catch (err) {
    checks.push({
      name: 'hubex token',
      ok: false,
      detail: (err as Error).message,
      fix: 'check HUBEX_SERVICE_TOKEN (shown once when the API user was made) and HUBEX_BASE_URL',
    });
    return undefined;
  }
  let events: readonly EventCatalogueItem[];
  try {
    events = await client.common.events();
    checks.push({
      name: 'x-application-id',
      ok: true,
      detail: `${config.hubex.applicationId} accepted (the catalogue lists ${events.length} events)`,
    });
  } catch (err) {
    const forbidden = err instanceof HubexApiError && err.status === 403;
    checks.push({
      name: 'x-application-id',
      ok: false,
      detail: (err as Error).message,
      fix: forbidden ? "check HUBEX_APPLICATION_ID (5 = Api) and the API user's roles" : 'check HUBEX_BASE_URL and the network',
    });
    return undefined;
  }
  try {
    checks.push(webhookCheck(await webhookDetails(client), config, tokens));
  } catch (err) {
    checks.push({
      name: 'webhook registered',
      ok: false,
      detail: (err as Error).message,
      fix: 'the API user needs the right to read webhooks (MSG)',
    });
  }
  return events;
}

/**
 * This router's webhooks (their uri carries one of its tokens, or starts with PUBLIC_URL), as the
 * watchdog sees them: whether one is active, its calls left, and whether its last call went through.
 */
function webhookCheck(hooks: Record<string, unknown>[], config: Config, tokens: readonly string[]): Check {
  const here = hooks.filter((w) => isOwnWebhook(String(w.uri ?? ''), tokens, config.publicUrl));
  const state = (w: Record<string, unknown>) => {
    const last = w.lastCall as { completed?: string | null; started?: string | null; exception?: string | null } | null | undefined;
    const call = !last
      ? 'never called'
      : last.exception
        ? `last call FAILED: ${hideTokens(last.exception, tokens, 120)}`
        : `last call ${last.completed ?? last.started ?? ''} ok`;
    const calls = typeof w.callsRemaining === 'number' ? `, ${w.callsRemaining} failed calls left` : '';
    return `#${String(w.id)} ${w.isActive === true ? 'active' : 'INACTIVE'}${calls}, ${call}`;
  };
  const detail = here.slice(0, 5).map(state).join('; ') + (here.length > 5 ? `; and ${here.length - 5} more` : '');
  const active = here.filter((w) => w.isActive === true);
  if (active.length > 0) {
    const failing = active.filter((w) => (w.lastCall as { exception?: string } | null)?.exception);
    return {
      name: 'webhook registered',
      ok: failing.length === 0,
      detail,
      ...(failing.length ? { fix: 'look at hubex-router webhooks list: is the router reachable from HubEx at that URL?' } : {}),
    };
  }
  if (here.length > 0) {
    return {
      name: 'webhook registered',
      ok: false,
      detail: `none active: ${detail}`,
      fix: `hubex-router webhooks activate ${String(here[0]!.id)}, or WEBHOOK_AUTO_ACTIVATE=true to have the router do it`,
    };
  }
  // Pull-only: no webhook, but reconciliation brings every task change (as task.modified).
  if (config.reconcileIntervalMs > 0) {
    return {
      name: 'webhook registered',
      ok: true,
      detail: `none: pull-only, task changes arrive as task.modified every ${config.reconcileIntervalMs} ms; for events as they happen: hubex-router webhooks register --events 40,41 (with PUBLIC_URL set)`,
    };
  }
  return {
    name: 'webhook registered',
    ok: false,
    detail: 'no HubEx webhook points at this router, and reconciliation is off (RECONCILE_INTERVAL_MS=0): no event reaches it',
    fix: 'hubex-router webhooks register --events 40,41 (with PUBLIC_URL set)',
  };
}

/** Whether reconciliation runs, and how far its cursor got (from the store). */
function reconcileCheck(config: Config, cursor: string | null): Check {
  if (config.reconcileIntervalMs === 0) return { name: 'reconciliation', ok: true, detail: 'off (RECONCILE_INTERVAL_MS=0)' };
  const every = `every ${config.reconcileIntervalMs} ms`;
  if (cursor === null) return { name: 'reconciliation', ok: true, detail: `${every}; not started yet (the router starts it)` };
  return { name: 'reconciliation', ok: true, detail: `${every}; the changes HubEx made up to ${cursor} are in` };
}

const silentLogger = () => createLogger('silent');
