// `webhooks list|register|activate|deactivate|delete`: this router's webhooks in HubEx (MSG API).
import type { Config } from '../../config.js';
import { createHubexClient, type HubexClient } from '../../hubex/client.js';
import { resolveWebhookTokens } from '../../webhook-tokens.js';
import { idList, parse } from '../args.js';
import { readConfig } from '../environment.js';
import { NeedsConfigError, UsageError } from '../errors.js';
import { listWebhooks, webhooksTable } from '../hubex-webhooks.js';
import { json, out } from '../output.js';

export async function webhooks(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const c = readConfig();
  if (sub === 'list') {
    const { values } = parse(rest);
    const hooks = await withClient(c, listWebhooks);
    if (values.json) json(hooks);
    else out(webhooksTable(hooks));
    return 0;
  }
  if (sub === 'register') {
    const { values } = parse(rest, {
      events: { type: 'string' },
      stages: { type: 'string' },
      name: { type: 'string' },
      url: { type: 'string' },
      inactive: { type: 'boolean' },
    });
    const id = await withClient(c, (client) =>
      registerWebhook(client, c, {
        url: values.url as string | undefined,
        events: idList(values.events, 'events'),
        stages: idList(values.stages, 'stages'),
        name: (values.name as string | undefined) ?? 'hubex-router',
        active: values.inactive !== true,
      }),
    );
    if (values.json) json({ id });
    else
      out(
        `Webhook ${id} registered${values.inactive ? ' (inactive)' : ''}: HubEx now calls this router. Check it with: hubex-router webhooks list`,
      );
    return 0;
  }
  if (sub === 'activate' || sub === 'deactivate' || sub === 'delete') {
    const { values, positionals } = parse(rest);
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0]!)) throw new UsageError(`webhooks ${sub} takes one webhook id`);
    const id = Number(positionals[0]);
    await withClient(c, (client) => client.msg.webhooks[sub](id));
    if (values.json) json({ id, done: sub });
    else out(`Webhook ${id} ${sub === 'delete' ? 'deleted' : `${sub}d`}.`);
    return 0;
  }
  throw new UsageError(`webhooks takes list, register, activate, deactivate or delete${sub ? `, not "${sub}"` : ''}`);
}

/** Runs `fn` with a HubEx client, closed after; without a HubEx token that is a NeedsConfigError (exit 78). */
async function withClient<T>(c: Config, fn: (client: HubexClient) => Promise<T>): Promise<T> {
  if (!c.hubex.serviceToken && !c.hubex.accessToken) {
    throw new NeedsConfigError("Set HUBEX_SERVICE_TOKEN (the API user's service token) or HUBEX_ACCESS_TOKEN to talk to HubEx.");
  }
  const client = createHubexClient({ ...c.hubex, retries: 1 });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** The webhook URL of this router with its first token: what HubEx is told to call. */
function routerUrl(c: Config, base?: string): string {
  const root = (base ?? c.publicUrl)?.replace(/\/+$/, '');
  if (!root) throw new NeedsConfigError('Set PUBLIC_URL (or pass --url) to the https:// address HubEx reaches this router at.');
  return `${root}/hooks/hubex/${resolveWebhookTokens(c).tokens[0]}`;
}

function registerWebhook(
  client: HubexClient,
  c: Config,
  o: { url?: string | undefined; events: number[]; stages: number[]; name: string; active: boolean },
): Promise<number> {
  if (o.events.length === 0)
    throw new NeedsConfigError('Name the events to send with --events (ids, e.g. 40,41; see hubex-router events).');
  return client.msg.webhooks.create({ name: o.name, uri: routerUrl(c, o.url), events: o.events, taskStages: o.stages, isActive: o.active });
}
