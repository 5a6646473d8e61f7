// Reconciliation: HubEx's push is fragile (an undocumented body, a budget of failed calls after
// which a webhook stops), so every RECONCILE_INTERVAL_MS the router asks HubEx which tasks
// changed since its cursor (GET /WORK/Tasks?lastModifiedFrom=..., through every Range page), and
// stores a `task.modified` event for each change that no pushed event covers. The cursor lives in
// the store and moves only once those events are stored; on Redis one instance polls at a time
// (a lease in the store). docs/reconciliation.md says what a user sees.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HubexEvent } from '../events/event.js';
import { parseHubexTime, taskModifiedEvent, taskModifiedId, taskModifiedRaw } from '../events/synthesized.js';
import type { HubexClient } from '../hubex/client.js';
import type { AcceptResult, IncomingEvent, Store } from '../store/contract.js';
import { classify } from '../delivery/classify.js';
import { Every } from './every.js';

/** Polls start this long before the cursor: a change HubEx commits late, with an earlier time, is still found. */
export const OVERLAP_MS = 60_000;
/**
 * A pushed event about a task covers a change of it when it was received no earlier than this
 * before the change's lastModified: the clocks of HubEx and of this machine may differ by that much.
 */
export const COVER_TOLERANCE_MS = 1000;
/** A change younger than this (half the interval, at most 30 s) waits for the next poll: its push may be on its way. */
export const settleDelayMs = (intervalMs: number): number => Math.min(30_000, Math.floor(intervalMs / 2));
/** A change stamped further ahead of this machine's clock than this is taken at once (clocks or zones gone wrong). */
export const FUTURE_MS = 5 * 60_000;
/** The first poll looks back this far from this machine's now (HubEx's clock may be behind it). */
export const FIRST_LOOKBACK_MS = 10 * 60_000;
/** Listed tasks changed before the filter's time, past which HubEx is taken to ignore the filter and the poll stops. */
export const IGNORED_FILTER_AFTER = 1000;
/** Tasks per Range page, and per accept. */
export const PAGE_SIZE = 500;

export interface ReconcilerMetrics {
  poll(outcome: 'ok' | 'failed' | 'skipped', seconds: number): void;
  tasks(result: TaskResult, n: number): void;
  cursor(ms: number): void;
}

/** What became of a task a poll listed. */
export type TaskResult = 'modified' | 'duplicate' | 'covered' | 'deferred' | 'unusable';

export interface ReconcilerOptions {
  readonly store: Store;
  readonly hubex: HubexClient;
  readonly tenant: string;
  readonly intervalMs: number;
  /** The event with its tenant and the handlers (and flows) it fans out to, as the webhook route does it. */
  readonly fanOut: (event: HubexEvent) => IncomingEvent;
  /** Told of what each accept stored (the events metrics). */
  readonly onAccepted?: (result: AcceptResult) => void;
  readonly log: Logger;
  readonly metrics?: ReconcilerMetrics;
  readonly now?: () => number;
  readonly pageSize?: number;
}

export interface PollResult {
  readonly outcome: 'ok' | 'skipped' | 'started';
  /** Tasks listed, by what became of them. */
  readonly tasks: Readonly<Record<TaskResult, number>>;
  /** Tasks HubEx listed. */
  readonly listed: number;
  readonly cursor: string | null;
}

const CURSOR = 'tasks';

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #now: () => number;
  readonly #holder = randomUUID();
  readonly #leaseName: string;
  readonly #leaseMs: number;
  readonly #every: Every;
  #failedSince: number | undefined;
  #skewWarnedAt = Number.NEGATIVE_INFINITY;
  #failures = 0;
  #failureLoggedAt = Number.NEGATIVE_INFINITY;
  /** Tasks whose change was too recent at the last poll: at this one it is taken however recent, or a busy task would wait for ever. */
  #deferred = new Set<number>();
  #deferredNow = new Set<number>();
  /** Tasks the walk under way listed with a time before the filter's. */
  #older = 0;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#leaseName = `reconcile:${CURSOR}:${options.tenant}`;
    // Renewed at every poll (and during a long one): another instance takes over within three intervals of a holder's death.
    this.#leaseMs = Math.max(3 * options.intervalMs, 1000);
    this.#every = new Every(options.intervalMs, () => this.poll());
  }

  /** Polls now, then every interval (never two at once). */
  start(): void {
    this.#every.start();
  }

  /** Stops polling: a poll under way is aborted (its cursor stays), and the lease is given up. */
  async stop(): Promise<void> {
    await this.#every.stop();
    await this.#o.store.releaseLease(this.#leaseName, this.#holder).catch(() => {});
  }

  /** One poll: what changed since the cursor, stored as task.modified where no push covered it. Rejects when it failed (logged). */
  async poll(): Promise<PollResult> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const result = await this.#poll();
      this.#o.metrics?.poll(result.outcome === 'skipped' ? 'skipped' : 'ok', seconds());
      if (this.#failedSince !== undefined && result.outcome !== 'skipped') {
        this.#o.log.info({ failedForMs: this.#now() - this.#failedSince, failedPolls: this.#failures }, 'reconciliation works again');
        this.#failedSince = undefined;
        this.#failures = 0;
        this.#failureLoggedAt = Number.NEGATIVE_INFINITY;
      }
      return result;
    } catch (err) {
      this.#o.metrics?.poll('failed', seconds());
      if (!this.#every.stopped) {
        this.#failedSince ??= this.#now();
        this.#failures++;
        // The first failure, then at most one line a minute while it lasts (with how many there were).
        if (this.#now() - this.#failureLoggedAt >= 60_000) {
          this.#failureLoggedAt = this.#now();
          this.#o.log.error(
            { error: errorOf(err), failingForMs: this.#now() - this.#failedSince, failedPolls: this.#failures },
            `reconciliation poll failed; the cursor stays, and it is tried again in ${this.#o.intervalMs} ms`,
          );
        }
      }
      throw err;
    }
  }

  async #poll(): Promise<PollResult> {
    const { store, tenant } = this.#o;
    const tasks: Record<TaskResult, number> = { modified: 0, duplicate: 0, covered: 0, deferred: 0, unusable: 0 };
    if (!(await store.lease(this.#leaseName, this.#holder, this.#leaseMs))) return { outcome: 'skipped', tasks, listed: 0, cursor: null };
    let leasedAt = this.#now();
    const stored = await store.readCursor(tenant, CURSOR);
    const cursorMs = stored === null ? Number.NaN : Date.parse(stored);
    if (Number.isNaN(cursorMs)) {
      // The first poll (or a cursor no longer readable): changes are followed from a little before
      // now, so that a HubEx clock behind this machine's (by up to FIRST_LOOKBACK_MS) loses none.
      const start = new Date(this.#now() - FIRST_LOOKBACK_MS).toISOString();
      await store.writeCursor(tenant, CURSOR, start);
      this.#o.metrics?.cursor(Date.parse(start));
      this.#o.log[stored === null ? 'info' : 'warn'](
        { cursor: start, ...(stored === null ? {} : { unreadable: stored.slice(0, 100) }) },
        'reconciliation starts: changes in HubEx from here on that no webhook brings become task.modified events',
      );
      return { outcome: 'started', tasks, listed: 0, cursor: start };
    }
    const from = cursorMs - OVERLAP_MS;
    const settledBefore = this.#now() - settleDelayMs(this.#o.intervalMs);
    let newest = cursorMs;
    const pageSize = this.#o.pageSize ?? PAGE_SIZE;
    let batch: Record<string, unknown>[] = [];
    this.#older = 0;
    const flush = async () => {
      const b = batch;
      batch = [];
      newest = Math.max(newest, await this.#store(b, from, settledBefore, tasks));
      // A long walk (a rate-limited HubEx, thousands of changes) keeps the lease.
      if (this.#now() - leasedAt > this.#leaseMs / 3) {
        if (!(await store.lease(this.#leaseName, this.#holder, this.#leaseMs)))
          throw new Error('the reconciliation lease was lost to another instance');
        leasedAt = this.#now();
      }
    };
    const list = this.#o.hubex.work.listTasks({ lastModifiedFrom: new Date(from).toISOString() }, { pageSize, signal: this.#every.signal });
    let listed = 0;
    this.#deferredNow = new Set();
    for await (const task of list) {
      listed++;
      batch.push(task as unknown as Record<string, unknown>);
      if (batch.length >= pageSize) await flush();
      // HubEx ignores a parameter it does not know: a list of old tasks means the filter did not apply, and walking on would read them all.
      if (this.#older >= IGNORED_FILTER_AFTER && this.#older > listed / 2) {
        throw new Error(
          `HubEx listed ${this.#older} tasks changed before lastModifiedFrom: it did not filter by it, so reconciliation stops this walk`,
        );
      }
    }
    await flush();
    this.#deferred = this.#deferredNow;
    // Only now, with every change of the walk stored, does the cursor move.
    const cursor = newest > cursorMs ? new Date(newest).toISOString() : stored!;
    if (newest > cursorMs) await store.writeCursor(tenant, CURSOR, cursor);
    this.#o.metrics?.cursor(Date.parse(cursor));
    for (const [result, n] of Object.entries(tasks)) if (n > 0) this.#o.metrics?.tasks(result as TaskResult, n);
    if (tasks.modified > 0 || tasks.unusable > 0) {
      this.#o.log.info(
        { ...tasks, cursor },
        `reconciliation stored ${tasks.modified} task.modified event(s) for changes no webhook brought`,
      );
    }
    return { outcome: 'ok', tasks, listed, cursor };
  }

  /** Stores the uncovered changes of one batch; answers the newest change time it took (or -Infinity). */
  async #store(
    batch: readonly Record<string, unknown>[],
    from: number,
    settledBefore: number,
    tasks: Record<TaskResult, number>,
  ): Promise<number> {
    const changes: { id: number; at: number; task: Record<string, unknown> }[] = [];
    const future = this.#now() + FUTURE_MS;
    for (const item of batch) {
      const task = item !== null && typeof item === 'object' ? item : {};
      const id = Number(task.id);
      const at = typeof task.lastModified === 'string' ? parseHubexTime(task.lastModified) : Number.NaN;
      if (at < from) this.#older++;
      // Not a task, no usable id or time, or a time before the filter's (HubEx ignoring it): nothing to go by.
      if (!Number.isSafeInteger(id) || id <= 0 || Number.isNaN(at) || at < from) tasks.unusable++;
      // Too recent: its push may be on its way. But not twice running (a task changed all the time
      // would wait for ever), nor far ahead of this machine's clock (a clock or a zone gone wrong).
      else if (at > settledBefore && at <= future && !this.#deferred.has(id)) {
        tasks.deferred++;
        if (this.#deferredNow.size < 10_000) this.#deferredNow.add(id);
      } else changes.push({ id, at, task });
    }
    if (changes.some((c) => c.at > future) && this.#now() - this.#skewWarnedAt > 3_600_000) {
      this.#skewWarnedAt = this.#now();
      this.#o.log.warn(
        "HubEx says tasks changed more than 5 minutes ahead of this machine's clock: check both clocks (HubEx's times are UTC); such a change is stored, and does not move the cursor",
      );
    }
    if (changes.length === 0) return Number.NEGATIVE_INFINITY;
    const since = Math.min(...changes.map((c) => c.at)) - COVER_TOLERANCE_MS;
    const pushed = await this.#o.store.lastPushedTasks(this.#o.tenant, [...new Set(changes.map((c) => c.id))], since);
    const receivedAt = new Date(this.#now());
    const incoming: IncomingEvent[] = [];
    for (const c of changes) {
      if ((pushed.get(c.id) ?? Number.NEGATIVE_INFINITY) >= c.at - COVER_TOLERANCE_MS) tasks.covered++;
      else incoming.push(this.#o.fanOut(taskModifiedEvent(taskModifiedId(c.id, c.at), taskModifiedRaw(c.id, c.task), receivedAt)));
    }
    if (incoming.length > 0) {
      const result = await this.#o.store.accept(incoming);
      tasks.modified += result.accepted;
      tasks.duplicate += result.duplicates;
      this.#o.onAccepted?.(result);
    }
    // A change stamped in the future does not move the cursor: it would hide the changes before it.
    return Math.max(...changes.filter((c) => c.at <= future).map((c) => c.at));
  }
}

/** An error as a log line takes it (read as a delivery's error is: src/delivery/classify.ts), with HubEx's status; never a header or token. */
export function errorOf(err: unknown): Record<string, unknown> {
  const { errorClass, message, traceId } = classify(err);
  const status = (err as { status?: unknown } | null)?.status;
  return {
    type: errorClass,
    message: message.slice(0, 500),
    ...(typeof status === 'number' ? { status } : {}),
    ...(traceId ? { traceId } : {}),
  };
}
