// One run of one delivery, whatever the back end: find the handler, rebuild the event, apply
// `where`, call handle() under HANDLER_TIMEOUT_MS through ctx.signal, and say what comes next:
// done, skipped, retry later (backoff with full jitter), dead, or released (a shutdown). The app
// gives this to the store's worker (src/store/contract.ts, RunDelivery), which claims a delivery
// and records its outcome.
import type { Logger } from 'pino';
import { HandlerTimeoutError, PermanentError, ShutdownAbortError } from '../errors.js';
import type { HubexEvent } from '../events/event.js';
import type { AttemptError, Outcome, RunnableDelivery, RunResult, StoredEvent } from '../store/contract.js';
import { type BackoffOptions, retryDelay } from './backoff.js';
import { classify } from './classify.js';
import { type DeadContext, type Handler, TYPED_ENTITIES } from './define-handler.js';
import { inTurn } from './turns.js';
import type { HandlerRegistry } from './registry.js';

export interface RunnerOptions {
  readonly registry: HandlerRegistry;
  /** The stored event as handlers see it. */
  readonly rebuild: (stored: StoredEvent) => HubexEvent;
  /** The HubEx client for a run: one shared client today, per tenant later. */
  readonly hubexFor: (event: HubexEvent) => unknown;
  readonly log: Logger;
  /** Told of every run's outcome (for the metrics). */
  readonly observe?: (run: { handler: string; outcome: Outcome['kind']; ms: number }) => void;
  /** Told how long each handler call held the event loop before its first await, in ms. */
  readonly blocked?: (handler: string, ms: number) => void;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retry: BackoffOptions;
  /**
   * A delivery whose handler is not loaded here: 'dead' at once (one instance: nothing else will
   * run it), or 'retry' (several instances: one that has it, say during a rolling deploy, may
   * take it; after MAX_ATTEMPTS it is dead). Default 'dead'.
   */
  readonly missingHandler?: 'dead' | 'retry';
  readonly now?: () => number;
  readonly random?: () => number;
}

export async function runDelivery(o: RunnerOptions, d: RunnableDelivery, controller: AbortController): Promise<RunResult> {
  const now = o.now ?? Date.now;
  const startedAt = now();
  const log = o.log.child({ handler: d.handler, deliveryId: d.id, eventId: d.event.id, attempt: d.attempt });
  let outcome: Outcome;
  let work: Promise<unknown> | undefined;
  let policy: Policy = policyOf(o, undefined);
  let handler: Handler | undefined;
  let event: HubexEvent | undefined;
  try {
    handler = o.registry.get(d.handler);
    policy = policyOf(o, handler);
    if (d.recovered && d.attempt > policy.maxAttempts) {
      // Its attempts are used up and its last run never finished: the process stopped during it
      // (a crash, kill -9, an uncaught error). Not run again, or a handler that takes the process
      // down would do so for ever. (The dispatcher runs a recovered delivery alone, so that only
      // the culprit's attempts are counted by such crashes, not those of runs beside it.)
      throw new PermanentError(
        `Run ${d.attempt} of at most ${policy.maxAttempts} (${handler?.maxAttempts ? 'its maxAttempts' : 'MAX_ATTEMPTS'}), and the last run was cut short: the router stopped during it; not run again.`,
      );
    }
    if (!handler) {
      if (o.missingHandler === 'retry') throw new Error(`No handler named "${d.handler}" is loaded on this instance.`);
      throw new PermanentError(`No handler named "${d.handler}" is loaded now; load it again and replay this delivery.`);
    }
    try {
      event = o.rebuild(d.event);
    } catch (err) {
      // What is stored does not change: no retry can help.
      throw new PermanentError(`The stored event cannot be read back (${classify(err).message}).`, { cause: err });
    }
    if (handler.typed) checkTyped(event);
    // The timeout covers `where` too: an async one that never settles must not hold its slot for ever.
    const timeoutMs = policy.timeoutMs;
    const setting = handler.timeoutMs === undefined ? 'HANDLER_TIMEOUT_MS' : 'its timeoutMs';
    const timer = setTimeout(() => controller.abort(new HandlerTimeoutError(timeoutMs, setting)), timeoutMs);
    try {
      const h = handler;
      const e = event;
      if (h.where) work = Promise.resolve().then(() => h.where!(e));
      if (h.where && !(await untilAborted(work!, controller.signal))) {
        outcome = { kind: 'skipped' };
      } else {
        const ctx = {
          event: e,
          hubex: o.hubexFor(e),
          log,
          signal: controller.signal,
          attempt: d.attempt,
          deliveryId: d.id,
          collapsed: d.collapsed ?? 0,
        };
        // In a turn of its own, after the I/O waiting: webhooks are not held up behind a queue of runs.
        work = inTurn(() => h.handle(ctx), o.blocked && ((ms) => o.blocked!(d.handler, ms)));
        await untilAborted(work, controller.signal);
        outcome = { kind: 'done' };
      }
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    outcome = failure(o, policy, err, d, controller.signal, log);
  }
  const ms = now() - startedAt;
  try {
    o.observe?.({ handler: d.handler, outcome: outcome.kind, ms });
  } catch (err) {
    log.error({ err }, 'could not count the run in the metrics');
  }
  if (outcome.kind === 'done' || outcome.kind === 'skipped') log.debug({ ms, outcome: outcome.kind }, 'delivery finished');
  const dead = outcome.kind === 'dead' ? outcome.error : undefined;
  const onDead = handler?.onDead;
  if (dead && onDead) {
    const deadEvent = event ?? tryRebuild(o, d);
    if (deadEvent) {
      const ctx = { event: deadEvent, hubex: o.hubexFor(deadEvent), log, attempts: d.attempt, deliveryId: d.id };
      return { outcome, startedAt, ms, work, onRecorded: (stop) => runOnDead(onDead, ctx, dead, policy.timeoutMs, stop) };
    }
  }
  return { outcome, startedAt, ms, work };
}

/**
 * A handler whose subscriptions are all task.* or asset.* names is typed TaskEvent or AssetEvent:
 * it must not get an event without its entity's id (a payload without TaskID), whatever came in.
 */
function checkTyped(event: HubexEvent): void {
  const entity = event.name.split('.')[0]!;
  const field = Object.hasOwn(TYPED_ENTITIES, entity) ? TYPED_ENTITIES[entity as keyof typeof TYPED_ENTITIES] : undefined;
  if (!field || typeof event[field] !== 'number' || event.entity?.type !== entity) {
    throw new PermanentError(
      `The event ${event.name} has no ${field ?? 'typed entity'} (its entity: ${event.entity ? `${event.entity.type} ${String(event.entity.id)}` : 'none'}), which the handler's subscriptions promise it.`,
    );
  }
}

/** The timeout, attempts and backoff of a handler's runs: its own policy over the router's settings. */
interface Policy {
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retry: BackoffOptions;
}

function policyOf(o: RunnerOptions, h: Handler | undefined): Policy {
  return {
    timeoutMs: h?.timeoutMs ?? o.timeoutMs,
    maxAttempts: h?.maxAttempts ?? o.maxAttempts,
    retry: { baseMs: h?.retry?.baseMs ?? o.retry.baseMs, maxMs: h?.retry?.maxMs ?? o.retry.maxMs },
  };
}

function tryRebuild(o: RunnerOptions, d: RunnableDelivery): HubexEvent | undefined {
  try {
    return o.rebuild(d.event);
  } catch {
    return undefined;
  }
}

/**
 * A handler's onDead, once its delivery is recorded dead: under the handler's timeout, its failure
 * logged and never retried (a dead letter must not turn into a loop). Never throws.
 */
async function runOnDead(
  onDead: NonNullable<Handler['onDead']>,
  base: Omit<DeadContext<HubexEvent, unknown>, 'signal'>,
  error: AttemptError,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new HandlerTimeoutError(timeoutMs, 'its timeoutMs')), timeoutMs);
  const signal = AbortSignal.any([controller.signal, stop]);
  try {
    const work = Promise.resolve().then(() => onDead({ ...base, signal }, error));
    await untilAborted(work, signal);
    base.log.info('onDead ran');
  } catch (err) {
    const f = classify(err);
    try {
      base.log.error({ error: f.message, errorClass: f.errorClass }, 'onDead failed; it is not run again');
    } catch {
      // a logger that throws: nothing more to do
    }
  } finally {
    clearTimeout(timer);
  }
}

function failure(o: RunnerOptions, p: Policy, err: unknown, d: RunnableDelivery, signal: AbortSignal, log: Logger): Outcome {
  const reason = signal.aborted ? signal.reason : undefined;
  if (reason instanceof ShutdownAbortError) {
    log.info('aborted by the shutdown; released to run after the restart');
    return { kind: 'released', error: { message: reason.message, errorClass: reason.name } };
  }
  // A timeout: the handler may have rejected with its own AbortError; the timeout is the story.
  const f = classify(reason instanceof HandlerTimeoutError ? reason : err);
  const error: AttemptError = { message: f.message, errorClass: f.errorClass, traceId: f.traceId };
  if (!f.retry || d.attempt >= p.maxAttempts) {
    const why = f.retry ? `dead after ${d.attempt} attempts` : 'dead: a retry cannot help';
    log.error({ error: error.message, errorClass: error.errorClass, traceId: error.traceId }, `delivery ${why}`);
    return { kind: 'dead', error };
  }
  const delay = retryDelay(d.attempt, p.retry, o.random ?? Math.random, f.notBeforeMs ?? 0);
  log.warn({ error: error.message, errorClass: error.errorClass, traceId: error.traceId, retryInMs: delay }, 'delivery failed; retrying');
  return { kind: 'retry', runAt: (o.now ?? Date.now)() + delay, error };
}

/** Resolves or rejects with `work`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
