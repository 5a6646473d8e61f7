// Prometheus metrics, all named hubex_router_*, on one registry per app (so that two apps in one
// process, as in tests, do not share counters). docs/metrics.md lists each one.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Backlog } from '../store/contract.js';

export const PREFIX = 'hubex_router_';

/** prom-client's default gauges named `_total`, which Prometheus reserves for counters; their by-type gauges remain (sum them). */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** The HubEx services the client knows; a call to any other path counts as `other`. */
const SERVICES = new Set(['AUTHZ', 'COMMON', 'ES', 'MSG', 'TSTG', 'WORK']);

/**
 * Values of a label that a sender chooses (event names: `event.<id>` for any id it sends): the
 * first `max` distinct ones keep their value, every later one counts as `other`. Values `known`
 * to be few (the catalogue's names) always keep theirs.
 */
export class LabelCap {
  readonly #seen = new Set<string>();
  constructor(
    readonly max: number,
    private readonly known: (value: string) => boolean = () => false,
  ) {}

  label(value: string): string {
    if (this.#seen.has(value) || this.known(value)) return value;
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(value);
    return value;
  }
}

export const serviceLabel = (service: string): string => (SERVICES.has(service) ? service : 'other');

export class Metrics {
  readonly registry = new Registry();

  readonly webhookRequests = new Counter({
    name: `${PREFIX}webhook_requests_total`,
    help: 'Webhook calls answered, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly eventsAccepted = new Counter({
    name: `${PREFIX}events_accepted_total`,
    help: 'Events stored, by event name.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });

  readonly eventsDuplicate = new Counter({
    name: `${PREFIX}events_duplicate_total`,
    help: 'Events answered as duplicates of one already stored, by event name.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });

  readonly deliveries = new Counter({
    name: `${PREFIX}deliveries_total`,
    help: 'Handler runs, by handler and outcome (done, skipped, retry, dead, released).',
    labelNames: ['handler', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly deliveryDuration = new Histogram({
    name: `${PREFIX}delivery_duration_seconds`,
    help: 'How long handler runs took, by handler and outcome.',
    labelNames: ['handler', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly handlerBlocking = new Counter({
    name: `${PREFIX}handler_blocking_seconds_total`,
    help: 'Time handlers held the event loop, before their first await, by handler: webhooks wait meanwhile.',
    labelNames: ['handler'] as const,
    registers: [this.registry],
  });

  readonly hubexCalls = new Counter({
    name: `${PREFIX}hubex_calls_total`,
    help: 'Calls to the HubEx API, by service, method and status (0: no answer).',
    labelNames: ['service', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly hubexCallDuration = new Histogram({
    name: `${PREFIX}hubex_call_duration_seconds`,
    help: 'How long HubEx API calls took (each try), by service.',
    labelNames: ['service'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly uncaughtErrors = new Counter({
    name: `${PREFIX}uncaught_errors_total`,
    help: 'Errors nothing caught, by kind: a rejected promise nobody handled (logged; the router keeps serving), an exception (the router stops and exits 1).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly tokenRenewals = new Counter({
    name: `${PREFIX}hubex_token_renewals_total`,
    help: 'HubEx access token renewals, by how (service token or refresh token) and outcome.',
    labelNames: ['how', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly reconcilePolls = new Counter({
    name: `${PREFIX}reconcile_polls_total`,
    help: 'Reconciliation polls of HubEx, by outcome: ok, failed (the cursor stayed), skipped (another instance polls).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly reconcilePollDuration = new Histogram({
    name: `${PREFIX}reconcile_poll_duration_seconds`,
    help: 'How long reconciliation polls took, skipped ones aside.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly reconcileTasks = new Counter({
    name: `${PREFIX}reconcile_tasks_total`,
    help: 'Changed tasks the polls listed, by result: modified (a task.modified stored), duplicate (stored before), covered (a push brought it), deferred (too young, next poll), unusable (no id or time).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly reconcileCursor = new Gauge({
    name: `${PREFIX}reconcile_cursor_timestamp_seconds`,
    help: "The reconciliation cursor: changes in HubEx up to this time are stored (HubEx's clock).",
    registers: [this.registry],
  });

  readonly reconcileLastSuccess = new Gauge({
    name: `${PREFIX}reconcile_last_success_timestamp_seconds`,
    help: 'When the last reconciliation poll went through (this instance).',
    registers: [this.registry],
  });

  readonly webhookActive = new Gauge({
    name: `${PREFIX}webhook_active`,
    help: "This router's webhooks in HubEx: 1 active, 0 inactive (HubEx sends it nothing), by webhook id.",
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });

  readonly webhookCallsRemaining = new Gauge({
    name: `${PREFIX}webhook_calls_remaining`,
    help: "Failed calls HubEx still makes to this router's webhook before it stops it (callsRemaining), by webhook id.",
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });

  readonly webhookLastCall = new Gauge({
    name: `${PREFIX}webhook_last_call_timestamp_seconds`,
    help: "When HubEx last called this router's webhook, by webhook id.",
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });

  readonly webhookLastCallFailed = new Gauge({
    name: `${PREFIX}webhook_last_call_failed`,
    help: "Whether HubEx's last call to this router's webhook failed (1) or went through (0), by webhook id.",
    labelNames: ['webhook'] as const,
    registers: [this.registry],
  });

  readonly webhookWatchErrors = new Counter({
    name: `${PREFIX}webhook_watch_errors_total`,
    help: "Rounds of the webhook watchdog that could not read this router's webhooks from HubEx.",
    registers: [this.registry],
  });

  constructor(backlog: () => Promise<Backlog>, now: () => number = Date.now) {
    // Read at each scrape, from indexes only.
    let last: Promise<Backlog | undefined> | undefined;
    const read = () => {
      // One store read per scrape, shared by the gauges below.
      last ??= backlog()
        .catch(() => undefined)
        .finally(() => setImmediate(() => (last = undefined)));
      return last;
    };
    new Gauge({
      name: `${PREFIX}deliveries_queued`,
      help: 'Deliveries waiting or running now, and dead letters, by status.',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const b = await read();
        if (!b) return;
        this.set({ status: 'pending' }, b.pending);
        this.set({ status: 'running' }, b.running);
        this.set({ status: 'dead' }, b.dead);
      },
    });
    new Gauge({
      name: `${PREFIX}oldest_pending_delivery_age_seconds`,
      help: 'Age of the oldest delivery not finished (pending or running); 0 when there is none.',
      registers: [this.registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.oldestCreatedAt === null ? 0 : Math.max(0, (now() - b.oldestCreatedAt) / 1000));
      },
    });
    new Gauge({
      name: `${PREFIX}events_unrouted`,
      help: 'Stored events that no handler matched (kept for audit).',
      registers: [this.registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.unroutedEvents);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(`${PREFIX}${name}`);
  }
}
