// Unit-testing one handler: a payload as HubEx sends it, normalised as the router does, run once
// the way the router runs a delivery (where, the id its subscriptions promise, the timeout,
// error classification), with its log lines captured. No store, no server.
//
//   import { runHandler, startFakeHubex } from 'hubex-router/testing';
//   const result = await runHandler(handler, { EventID: 12, TaskID: 5 }, { hubex });
//   expect(result.status).toBe('done');
import type { AnyHandlerDefinition } from '../delivery/define-handler.js';
import { checkHandler } from '../delivery/loader.js';
import { HandlerRegistry } from '../delivery/registry.js';
import { runDelivery } from '../delivery/runner.js';
import { EventCatalogue } from '../events/catalogue.js';
import type { HubexEvent } from '../events/event.js';
import { createNormalizer } from '../events/normalize.js';
import { eventRebuilder } from '../events/rebuild.js';
import { createHubexClient, type HubexClient } from '../hubex/client.js';
import { createLogger } from '../observability/log.js';
import { logCapture } from './log-capture.js';
import { DEFAULT_TENANT, type AttemptError } from '../store/contract.js';

export interface RunHandlerOptions {
  /** What the handler gets as ctx.hubex: a client pointed at the fake HubEx, for example; without one, a client whose calls fail with HubexConfigError. */
  readonly hubex?: unknown;
  /** Which run this is (ctx.attempt); with the handler's maxAttempts it decides retry or dead. Default 1. */
  readonly attempt?: number;
  /** Names of the installation's events, as HubEx's catalogue would give them: `[{ id: 12, name: 'task.created' }]`. */
  readonly events?: readonly { readonly id: number; readonly name: string }[];
  /** Over the handler's own timeoutMs; default 30 s. */
  readonly timeoutMs?: number;
  /** ctx.collapsed, as a debounced run would have it: earlier events of its key collapsed into this one. Default 0. */
  readonly collapsed?: number;
}

export interface RunHandlerResult {
  /**
   * done; skipped (`where` said no); retry (the router would run it again later); dead (a
   * PermanentError, a HubEx answer no retry can fix, or its last attempt).
   */
  readonly status: 'done' | 'skipped' | 'retry' | 'dead';
  readonly error?: AttemptError;
  /** The event as the handler got it. */
  readonly event: HubexEvent;
  /** The handler's log lines (ctx.log), as JSON objects. */
  readonly logs: Record<string, unknown>[];
}

/** Runs a handler once for a payload (an object as HubEx posts it). Never rejects for the handler's errors. */
export async function runHandler(
  handler: AnyHandlerDefinition,
  payload: Record<string, unknown>,
  options: RunHandlerOptions = {},
): Promise<RunHandlerResult> {
  const loaded = checkHandler(handler, (handler as { name?: string }).name ?? 'handler');
  // The option wins over the handler's own timeout, as documented.
  const checked = options.timeoutMs === undefined ? loaded : Object.freeze({ ...loaded, timeoutMs: options.timeoutMs });
  const catalogue = new EventCatalogue();
  for (const e of options.events ?? []) catalogue.register({ ...e, entity: e.name.split('.')[0]! });
  const raw = JSON.stringify(payload);
  const normalize = createNormalizer({ catalogue, maxBatch: 1 });
  const [event] = normalize(JSON.parse(raw), raw, new Date());
  const { sink, lines: logs } = logCapture();
  const registry = new HandlerRegistry([checked], catalogue);
  let tokenless: HubexClient | undefined;
  const result = await runDelivery(
    {
      registry,
      rebuild: eventRebuilder(createNormalizer({ catalogue, maxBatch: 1, strict: false })),
      // As the router does without a HubEx token: a client whose calls fail with HubexConfigError.
      hubexFor: () => options.hubex ?? (tokenless ??= createHubexClient({ baseUrl: 'http://127.0.0.1:9/fsm', applicationId: 5 })),
      log: createLogger('debug', sink),
      timeoutMs: options.timeoutMs ?? checked.timeoutMs ?? 30_000,
      maxAttempts: 12,
      retry: { baseMs: 1000, maxMs: 3_600_000 },
    },
    {
      id: 'test-delivery',
      handler: checked.name,
      attempt: options.attempt ?? 1,
      ...(options.collapsed ? { collapsed: options.collapsed } : {}),
      event: { seq: 1, id: event!.id, tenant: DEFAULT_TENANT, name: event!.name, receivedAt: Date.parse(event!.receivedAt), raw },
    },
    new AbortController(),
  );
  await result.onRecorded?.(AbortSignal.timeout(checked.timeoutMs ?? 30_000));
  tokenless?.close();
  const { outcome } = result;
  const status = outcome.kind === 'released' ? 'retry' : outcome.kind;
  return { status, ...('error' in outcome && outcome.error ? { error: outcome.error } : {}), event: event!, logs };
}
