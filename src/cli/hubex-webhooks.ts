// HubEx's webhooks as the command line shows them: `webhooks list` and `doctor` read them here.
import type { HubexClient } from '../hubex/client.js';
import { formatTable } from './format.js';

export interface WebhookView {
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
      ? {
          started: (last.started as string) ?? null,
          completed: (last.completed as string) ?? null,
          exception: (last.exception as string) ?? null,
        }
      : null,
  };
}

/**
 * Every webhook with its details. HubEx's list (ListResult) has the id, name, isActive,
 * callsRemaining and lastCall but not the uri, events or stages: those come from a GET of each.
 */
export async function webhookDetails(client: HubexClient): Promise<Record<string, unknown>[]> {
  const listed: Record<string, unknown>[] = [];
  for await (const w of client.msg.webhooks.list()) listed.push(w as Record<string, unknown>);
  const out: Record<string, unknown>[] = [];
  // A few at a time: an installation has a handful of webhooks, seldom hundreds.
  for (let i = 0; i < listed.length; i += 8) {
    const batch = listed.slice(i, i + 8);
    const details = await Promise.all(batch.map((w) => client.msg.webhooks.get(Number(w.id))));
    batch.forEach((w, j) =>
      out.push({
        ...(details[j] as Record<string, unknown>),
        ...w,
        lastCall: w.lastCall ?? (details[j] as Record<string, unknown>).lastCall,
      }),
    );
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
      w.lastCall
        ? w.lastCall.exception
          ? `FAILED: ${w.lastCall.exception.slice(0, 60)}`
          : (w.lastCall.completed ?? w.lastCall.started ?? '')
        : 'never',
      w.uri,
    ]),
  );
}
