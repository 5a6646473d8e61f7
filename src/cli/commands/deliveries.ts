// `deliveries list|show|replay`: the dead letters and the history of each delivery, in the store.
import { listDeliveries, replayDeliveries, showDelivery } from '../../delivery/operations.js';
import type { DeliveryRecord } from '../../store/contract.js';
import { type Options, num, parse, type Values } from '../args.js';
import { withStore } from '../environment.js';
import { UsageError } from '../errors.js';
import { formatTable, when } from '../format.js';
import { json, out } from '../output.js';

const FILTERS: Options = { status: { type: 'string' }, handler: { type: 'string' }, event: { type: 'string' } };

export async function deliveries(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'list') return list(rest);
  if (sub === 'show') return show(rest);
  if (sub === 'replay') return replay(rest);
  throw new UsageError(`deliveries takes list, show or replay${sub ? `, not "${sub}"` : ''}`);
}

async function list(args: string[]): Promise<number> {
  const { values } = parse(args, { ...FILTERS, limit: { type: 'string' }, after: { type: 'string' } });
  const found = await withStore((s) =>
    listDeliveries(s, {
      status: values.status as string | undefined,
      handler: values.handler as string | undefined,
      eventName: values.event as string | undefined,
      limit: num(values.limit, 'limit'),
      afterId: values.after as string | undefined,
    }),
  );
  if (values.json) json(found);
  else if (found.length === 0) out('No deliveries match.');
  else out(formatTable(['id', 'status', 'handler', 'event', 'attempts', 'updated', 'last error'], found.map(row)));
  return 0;
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

async function show(args: string[]): Promise<number> {
  const { values, positionals } = parse(args);
  if (positionals.length !== 1) throw new UsageError('deliveries show takes one delivery id');
  const d = await withStore((s) => showDelivery(s, positionals[0]!));
  if (values.json) {
    json(d);
    return 0;
  }
  out(`delivery ${d.id}: ${d.status}, handler ${d.handler}, ${d.attempts} attempt(s) in this cycle, ${d.replays} replay(s)`);
  out(`event ${d.eventId} (${d.eventName}), received ${when(d.event.receivedAt)}`);
  if (d.dueAt !== null) out(`${d.status === 'running' ? 'leased until' : 'due'} ${when(d.dueAt)}`);
  if (d.lastError)
    out(`last error: ${d.lastError.errorClass}: ${d.lastError.message}${d.lastError.traceId ? ` (trace ${d.lastError.traceId})` : ''}`);
  out();
  out(
    formatTable(
      ['cycle', 'attempt', 'started', 'ms', 'outcome', 'error'],
      d.history.map((h) => [
        h.cycle,
        h.attempt,
        when(h.startedAt),
        h.finishedAt - h.startedAt,
        h.outcome,
        h.error ? `${h.error.errorClass}: ${h.error.message}` : '',
      ]),
    ),
  );
  out();
  out(`raw: ${d.event.raw}`);
  return 0;
}

/** Exit 1 when named deliveries were all skipped; --all-dead with none dead is not a failure. */
async function replay(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { handler: FILTERS.handler!, event: FILTERS.event!, 'all-dead': { type: 'boolean' } });
  const all = values['all-dead'] === true;
  if (all === positionals.length > 0) throw new UsageError('deliveries replay takes delivery ids, or --all-dead (not both)');
  if (!all && (values.handler || values.event)) throw new UsageError('--handler and --event go with --all-dead');
  const result = await withStore((s) =>
    replayDeliveries(
      s,
      all
        ? { allDead: true, handler: values.handler as string | undefined, eventName: values.event as string | undefined }
        : { ids: positionals },
      progress(values),
    ),
  );
  if (values.json) json(result);
  else {
    out(
      `${result.replayed.length} deliver${result.replayed.length === 1 ? 'y' : 'ies'} pending again; a running router picks them up within seconds.`,
    );
    if (result.skipped.length) out(`not replayed (no such delivery, or pending or running): ${result.skipped.join(', ')}`);
  }
  return !all && result.replayed.length === 0 ? 1 : 0;
}

/** A counter on stderr for long replays, where a person would otherwise wait in silence. */
const progress = (values: Values) => (p: { done: number; total: number }) => {
  if (values.json || p.total <= 500) return;
  process.stderr.write(`\rreplayed ${p.done} of ${p.total}${p.done === p.total ? '\n' : ''}`);
};
