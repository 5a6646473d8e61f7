// The Redis store, for several instances on one Redis: each event a hash (with its raw body) and
// an entry in a sorted set by sequence number, written by one Lua script per request
// (accept.lua), so that a duplicate sent to any instance is found; each delivery a BullMQ job
// whose id is `eventId@handler` (jobs.ts), so that a duplicate creates no second job. The 2xx goes
// out only after Redis answered both writes (docs/scaling.md: the AOF settings that make that
// answer durable). The connection does not queue commands while Redis is away: an accept then
// fails at once with StoreUnavailableError (the route answers 503), instead of waiting for a
// Redis that may never come back.
import { Queue } from 'bullmq';
import { type Redis, ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { StoreUnavailableError, UnstorableEventError } from '../../errors.js';
import type {
  AcceptedEvent,
  AcceptResult,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryId,
  DeliveryRecord,
  EventDetail,
  EventFilter,
  EventPage,
  EventRecord,
  EventSearch,
  Health,
  IncomingEvent,
  PruneResult,
  ReplayResult,
  ReplaySelector,
  Store,
} from '../contract.js';
import { closeConnection, redisConnection } from './connection.js';
import { jobFlowOf, promote, RedisFlows } from './flows.js';
import { type DeliveryJobData, type DeliveryQueue, jobIdOf, jobOptions, QUEUE_NAME, type RedisParts } from './jobs.js';
import { prune, replay } from './maintenance.js';
import { backlog, counts, list, listEvents, searchEvents, show, showEvent } from './reads.js';
import { luaScript } from './scripts.js';
import { RedisSync } from './sync.js';

export interface RedisStoreOptions {
  readonly url: string;
  /** Key prefix, for several routers on one Redis. Default `hubex-router`. */
  readonly prefix?: string;
  /** How long an identical body without a unique id of its own counts as a duplicate. Default 1 h. */
  readonly dedupWindowMs?: number;
  /** Completed jobs are kept this long (then BullMQ removes them); 0 keeps them. Default 7 days. */
  readonly retentionMs?: number;
  /** A command Redis does not answer within this fails (the webhook gets a 503). Default 5 s. */
  readonly commandTimeoutMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/** The event's field each value of the script's input comes from, for messages. */
const FIELD_NAMES: Readonly<Record<string, string>> = { key: 'id', entityType: 'entity type', entityId: 'entity id', raw: 'body' };

/** The keys' prefix unless the options name another. */
export const DEFAULT_PREFIX = 'hubex-router';

export class RedisStore implements Store {
  readonly backend = 'redis';
  readonly shared = true;
  readonly deliveryIds = 'text';
  readonly url: string;
  readonly prefix: string;
  readonly queue: DeliveryQueue;
  /** Commands fail at once while Redis is away (webhooks answer 503). */
  readonly redis: Redis;
  readonly #o: Required<Omit<RedisStoreOptions, 'now'>>;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #parts: RedisParts;
  readonly #flows: RedisFlows;
  readonly #sync: RedisSync;
  #downSince: number | undefined;
  /** Why the connection is down (its last error's message: never the command, which may hold the password). */
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    this.#o = { prefix: DEFAULT_PREFIX, dedupWindowMs: 3_600_000, retentionMs: 7 * 86_400_000, commandTimeoutMs: 5000, ...options };
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
    this.prefix = this.#o.prefix;
    this.url = options.url;
    this.redis = redisConnection(options.url, { failFast: true, commandTimeoutMs: this.#o.commandTimeoutMs });
    this.redis.on('error', (err: Error) => {
      this.#lastError = err.message;
      this.#down(err);
    });
    this.redis.on('ready', () => {
      this.#lastError = undefined;
      if (this.#downSince === undefined) return;
      this.#log.info({ downMs: this.#now() - this.#downSince }, 'Redis is back');
      this.#downSince = undefined;
    });
    this.redis.defineCommand('hxrAccept', { numberOfKeys: 0, lua: luaScript('accept') });
    this.queue = new Queue(QUEUE_NAME, { connection: this.redis, prefix: this.prefix });
    this.queue.on('error', (err: Error) => this.#down(err));
    this.#flows = new RedisFlows(this.redis, this.prefix);
    this.#sync = new RedisSync(this.redis, (suffix) => this.key(suffix));
    this.#parts = { redis: this.redis, queue: this.queue, key: (suffix) => this.key(suffix), now: this.#now };
  }

  /** The key of one of this store's own records. */
  key(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async accept(incoming: readonly IncomingEvent[]): Promise<AcceptResult> {
    await this.#connected();
    const now = this.#now();
    // The normaliser made every string well formed: Redis's cjson refuses a lone UTF-16
    // surrogate, and the whole batch with it (see #refused for what happens if one gets here).
    const input = incoming.map(({ event: e, tenant, handlers }) => ({
      key: e.id,
      tenant,
      idSource: e.idSource,
      eventID: e.eventID === null ? '' : String(e.eventID),
      name: e.name,
      entityType: e.entity?.type ?? '',
      entityId: e.entity === null ? '' : String(e.entity.id),
      raw: e.raw,
      handlers: JSON.stringify(handlers),
      pushedTask: e.source === 'webhook' && e.entity?.type === 'task' ? '1' : '',
    }));
    try {
      const answer = await (this.redis as unknown as { hxrAccept(...a: (string | number)[]): Promise<string> }).hxrAccept(
        `${this.prefix}:`,
        now,
        this.#o.dedupWindowMs,
        JSON.stringify(input),
      );
      const rows = JSON.parse(answer) as [string, 0 | 1, string, string][];
      // The deliveries, for duplicates too: a crash between the two writes left an event without
      // its jobs, and HubEx's retry (answered as a duplicate) makes them. An existing job id is a no-op.
      const jobs = rows.flatMap(([id, , handlers, seq], i) =>
        (JSON.parse(handlers) as string[]).map((handler) => {
          const { event: e, tenant, flows } = incoming[i]!;
          const flow = flows?.get(handler);
          const data: DeliveryJobData = {
            event: { seq: Number(seq), id, tenant, name: e.name, receivedAt: now, raw: e.raw },
            handler,
            attempt: 0,
            replays: 0,
            createdAt: now,
            updatedAt: now,
            dueAt: now,
            lastError: null,
            history: [],
            ...(flow ? { flow: jobFlowOf(handler, tenant, flow) } : {}),
          };
          const opts: ReturnType<typeof jobOptions> & { delay?: number } = jobOptions(jobIdOf(id, handler), this.#o.retentionMs);
          return { name: handler, data, opts, flow };
        }),
      );
      if (jobs.length > 0) {
        const flowed = jobs.filter((j) => j.flow !== undefined);
        const delays = await this.#flows.join(
          now,
          flowed.map(({ data, opts, flow }) => ({
            flow: data.flow!,
            job: opts.jobId,
            ...(flow!.kind === 'debounce' ? { periodMs: flow!.periodMs, maxWaitMs: flow!.maxWaitMs } : {}),
          })),
        );
        for (const [i, j] of flowed.entries()) {
          if (delays[i]! > 0) {
            j.opts.delay = delays[i];
            j.data = { ...j.data, dueAt: now + delays[i]! };
          }
        }
        await this.queue.addBulk(jobs.map(({ name, data, opts }) => ({ name, data, opts })));
        // Marks the events whose jobs exist now; a later duplicate makes none (see the script).
        // Should this write fail, the answer is a 503: HubEx's retry finds the jobs there (a no-op) and marks them.
        const marks = this.redis.multi();
        for (const [id, , handlers] of rows) if (handlers !== '[]') marks.hset(this.key(`ev:${id}`), 'jobs', '1');
        const [done, heads] = await Promise.all([
          marks.exec(),
          this.#flows.added(
            now,
            flowed.map(({ data, opts }) => ({ flow: data.flow!, job: opts.jobId, seq: data.event.seq, parked: (opts.delay ?? 0) > 0 })),
          ),
        ]);
        // A parked job whose line's head finished between the join and its adding: it goes now.
        if (heads.length > 0) await promote(this.queue, heads);
        const failed = done?.find(([err]) => err);
        if (!done || failed) throw failed?.[0] ?? new Error('the MULTI was aborted');
      }
      const out: AcceptedEvent[] = rows.map(([id, dup], i) => ({ id, name: incoming[i]!.event.name, duplicate: dup === 1 }));
      const duplicates = out.filter((e) => e.duplicate).length;
      return { accepted: out.length - duplicates, duplicates, events: out };
    } catch (err) {
      throw this.#refused(err, input) ?? this.#unavailable(err);
    }
  }

  /**
   * An error of the accept script that the data caused (Redis answered, refusing what it was
   * given): a 400 naming the field, never a 503 that HubEx would retry for ever. Undefined for
   * anything else (Redis away, out of memory, read-only: the store is unavailable).
   */
  #refused(err: unknown, input: readonly Record<string, string>[]): UnstorableEventError | undefined {
    // Only what the data itself proves: every other error of the script (OOM, READONLY during a
    // failover, MISCONF, BUSY, ... all name the script since Redis 7) means Redis cannot write
    // now, a 503 that HubEx retries; a 400 would make it drop the event for good.
    if (!(err instanceof ReplyError)) return undefined;
    for (const [i, e] of input.entries()) {
      for (const [field, value] of Object.entries(e)) {
        if (!value.isWellFormed()) {
          return new UnstorableEventError(
            `The ${FIELD_NAMES[field] ?? field} of event ${i} holds text Redis cannot store (a lone UTF-16 surrogate).`,
          );
        }
      }
    }
    return undefined;
  }

  async health(): Promise<Health> {
    if (this.#closed) return { ok: false, reason: 'the store is closed' };
    try {
      await this.#connected();
      await this.redis.set(this.key('probe'), String(this.#now()));
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `Redis does not take writes: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.queue.close().catch(() => {});
    await closeConnection(this.redis);
  }

  counts(): Promise<DeliveryCounts> {
    return counts(this.#parts);
  }

  backlog(): Promise<Backlog> {
    return backlog(this.#parts);
  }

  list(filter?: DeliveryFilter): Promise<DeliveryRecord[]> {
    return list(this.#parts, filter);
  }

  show(id: DeliveryId): Promise<DeliveryDetail | undefined> {
    return show(this.#parts, id);
  }

  replay(selector: ReplaySelector, onProgress?: (p: { done: number; total: number }) => void): Promise<ReplayResult> {
    return replay(this.#parts, selector, onProgress);
  }

  listEvents(filter?: EventFilter): Promise<EventRecord[]> {
    return listEvents(this.#parts, filter);
  }

  showEvent(id: string): Promise<EventDetail | undefined> {
    return showEvent(this.#parts, id);
  }

  searchEvents(search: EventSearch): Promise<EventPage> {
    return searchEvents(this.#parts, search);
  }

  async readCursor(tenant: string, name: string): Promise<string | null> {
    await this.#connected();
    return this.#sync.readCursor(tenant, name);
  }

  async writeCursor(tenant: string, name: string, value: string): Promise<void> {
    await this.#connected();
    return this.#sync.writeCursor(tenant, name, value);
  }

  async lease(name: string, holder: string, ms: number): Promise<boolean> {
    await this.#connected();
    return this.#sync.lease(name, holder, ms);
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#connected();
    return this.#sync.releaseLease(name, holder);
  }

  async lastPushedTasks(tenant: string, taskIDs: readonly number[], sinceMs: number): Promise<Map<number, number>> {
    await this.#connected();
    return this.#sync.lastPushedTasks(tenant, taskIDs, sinceMs);
  }

  prune(cutoff: number): Promise<PruneResult> {
    return prune(this.#parts, cutoff);
  }

  /**
   * While the first connection is being made, waits for it (up to the command timeout); once it
   * was up, a lost connection fails at once (no offline queue), so that webhooks get their 503 now.
   */
  async #connected(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('The store is closed.');
    const status = this.redis.status;
    if (status !== 'wait' && status !== 'connecting' && status !== 'connect') return;
    // A connection that already failed (refused, a wrong password) says why at once.
    if (this.#lastError !== undefined) throw new StoreUnavailableError(`Redis is not connected (${this.#lastError}).`);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        this.redis.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onError = (err: Error) => done(new StoreUnavailableError(`Redis is not connected (${err.message}).`));
      const timer = setTimeout(
        () => done(new StoreUnavailableError(`Redis did not answer within ${this.#o.commandTimeoutMs} ms.`)),
        this.#o.commandTimeoutMs,
      );
      this.redis.once('ready', onReady);
      this.redis.once('error', onError);
    });
  }

  #down(err: Error): void {
    if (this.#downSince !== undefined) return;
    this.#downSince = this.#now();
    this.#log.error({ error: err.message }, 'Redis is unavailable; webhooks answer 503 and handlers wait until it is back');
  }

  #unavailable(err: unknown): StoreUnavailableError {
    if (err instanceof StoreUnavailableError) return err;
    const message = err instanceof Error ? err.message : String(err);
    // ioredis says "Stream isn't writeable and enableOfflineQueue options is false" when it is not connected.
    const why = /enableOfflineQueue|Connection is closed/.test(message) ? 'not connected to Redis' : message;
    return new StoreUnavailableError(`Redis did not take the write (${why}).`);
  }
}
