// The Redis store, for several instances on one Redis: each event a hash (with its raw body) and
// an entry in a sorted set by sequence number, written by one Lua script per request, so that a
// duplicate sent to any instance is found; each delivery a BullMQ job whose id is
// `eventId@handler`, so that a duplicate creates no second job. The 2xx goes out only after Redis
// answered both writes (docs/scaling.md: the AOF settings that make that answer durable).
//
// The connection does not queue commands while Redis is away (enableOfflineQueue: false): an
// accept then fails at once with StoreUnavailableError (the route answers 503), instead of
// waiting for a Redis that may never come back.
import { type Job, Queue } from 'bullmq';
import { Redis, ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { StoreUnavailableError, UnstorableEventError } from '../../errors.js';
import type { HubexEvent } from '../../events/event.js';
import type {
  AttemptError,
  AttemptRecord,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryId,
  DeliveryOps,
  DeliveryRecord,
  DeliveryStatus,
  EventDetail,
  EventFilter,
  EventRecord,
  PruneResult,
  ReplayResult,
  ReplaySelector,
  StoredEvent,
} from '../deliveries.js';
import type { AcceptedEvent, AcceptResult, Health, Inbox } from '../inbox.js';

/** The BullMQ queue every instance shares. */
export const QUEUE_NAME = 'deliveries';

export interface RedisStoreOptions {
  readonly url: string;
  /** Key prefix, for several routers on one Redis. Default `hubex-router`. */
  readonly prefix?: string;
  /** How long an identical body without a unique id of its own counts as a duplicate. Default 1 h. */
  readonly dedupWindowMs?: number;
  /** Completed jobs are kept this long (then BullMQ removes them); 0 keeps them. Default 7 days. */
  readonly retentionMs?: number;
  /** The handlers an event fans out to (names); none by default, and the event is kept as unrouted. */
  readonly route?: (event: HubexEvent) => readonly string[];
  /** A command Redis does not answer within this fails (the webhook gets a 503). Default 5 s. */
  readonly commandTimeoutMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/** What a delivery job carries: its event, so that a run needs no second read. */
export interface DeliveryJobData {
  readonly event: StoredEvent;
  readonly handler: string;
  /** Runs recorded in this cycle (0 before the first). */
  readonly attempt: number;
  readonly replays: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When a delayed (retried) job falls due. */
  readonly dueAt: number | null;
  readonly lastError: AttemptError | null;
  readonly history: readonly AttemptRecord[];
}

/** What a completed job returns: its last run, which is not in `data.history` (saves a write). */
export interface DeliveryJobResult {
  readonly finished: AttemptRecord;
}

export type DeliveryJob = Job<DeliveryJobData, DeliveryJobResult | undefined, string>;

/** The job's data with its finishing run (from the return value) folded in. */
function settledData(job: DeliveryJob): DeliveryJobData {
  const finished = job.returnvalue?.finished;
  if (!finished || job.finishedOn === undefined) return job.data;
  const d = job.data;
  return { ...d, attempt: d.attempt + 1, updatedAt: finished.finishedAt, dueAt: null, lastError: null, history: [...d.history, finished] };
}

/** `eventId@handler`. BullMQ keeps ':' for its own keys, so ':' and '@' in an event id are percent-encoded. */
export function jobIdOf(eventId: string, handler: string): string {
  return `${eventId.replace(/[%:@]/g, (c) => encodeURIComponent(c))}@${handler}`;
}

/** Which BullMQ states each delivery status covers. */
const STATES: Readonly<Record<DeliveryStatus, readonly ('waiting' | 'delayed' | 'prioritized' | 'paused' | 'waiting-children' | 'active' | 'completed' | 'failed')[]>> = {
  pending: ['waiting', 'delayed', 'prioritized', 'paused', 'waiting-children'],
  running: ['active'],
  done: ['completed'],
  dead: ['failed'],
};

/** The jobs of a delivery status, from BullMQ's counts by state. */
const countOf = (counts: Readonly<Record<string, number>>, status: DeliveryStatus): number =>
  STATES[status].reduce((n, state) => n + (counts[state] ?? 0), 0);

const statusOfState = (state: string): DeliveryStatus | undefined =>
  (Object.keys(STATES) as DeliveryStatus[]).find((s) => (STATES[s] as readonly string[]).includes(state));

/**
 * Stores a request's events: per event, a duplicate (by id, or by body within the dedup window)
 * or a new hash with the next sequence number. Answers, per event, [id, 1 if duplicate, the
 * handlers whose jobs to add, seq]. ARGV: prefix, now, window, JSON of the events.
 */
const ACCEPT_SCRIPT = `
local p = ARGV[1]
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local evs = cjson.decode(ARGV[4])
local out = {}
for i, e in ipairs(evs) do
  local base = p .. 'ev:' .. e.key
  local id = e.key
  local dup = false
  if redis.call('EXISTS', base) == 1 then
    if redis.call('HGET', base, 'idSource') == 'payload' then
      dup = true
    else
      local last = redis.call('HGET', base, 'lastId') or e.key
      local lastAt = tonumber(redis.call('HGET', base, 'lastAt') or '0')
      if now - lastAt < window then
        dup = true
        id = last
      else
        -- The counter lives in the first event's hash, which retention may have deleted and made
        -- anew: skip the numbers a kept repeat still holds.
        repeat
          local n = redis.call('HINCRBY', base, 'repeats', 1)
          id = e.key .. '.' .. (n + 1)
        until redis.call('EXISTS', p .. 'ev:' .. id) == 0
        redis.call('HSET', base, 'lastId', id, 'lastAt', now)
      end
    end
  end
  local key = p .. 'ev:' .. id
  if dup then
    redis.call('HINCRBY', key, 'duplicates', 1)
    -- Its jobs are made again only when they may never have been (no 'jobs' mark): a completed
    -- job removed after RETENTION_DAYS must not run twice.
    local handlers = '[]'
    if redis.call('HEXISTS', key, 'jobs') == 0 then handlers = redis.call('HGET', key, 'handlers') or '[]' end
    out[i] = {id, 1, handlers, redis.call('HGET', key, 'seq') or '0'}
  else
    local seq = redis.call('INCR', p .. 'seq')
    redis.call('HSET', key, 'seq', seq, 'id', id, 'idSource', e.idSource, 'eventID', e.eventID, 'name', e.name,
      'entityType', e.entityType, 'entityId', e.entityId, 'receivedAt', now, 'raw', e.raw, 'duplicates', 0,
      'handlers', e.handlers)
    if id == e.key then redis.call('HSET', key, 'lastId', id, 'lastAt', now) end
    redis.call('ZADD', p .. 'events', seq, id)
    if e.handlers == '[]' then redis.call('ZADD', p .. 'unrouted', seq, id) end
    out[i] = {id, 0, e.handlers, tostring(seq)}
  end
end
return cjson.encode(out)
`;

/** The fields of an event's hash that listing reads (all but the body). */
const EVENT_FIELDS = ['seq', 'id', 'name', 'eventID', 'entityType', 'entityId', 'receivedAt', 'duplicates', 'handlers'] as const;

export class RedisStore implements Inbox, DeliveryOps {
  readonly deliveryIds = 'text';
  readonly url: string;
  readonly prefix: string;
  readonly queue: Queue<DeliveryJobData, DeliveryJobResult | undefined, string>;
  /** Commands fail at once while Redis is away (webhooks answer 503). */
  readonly redis: Redis;
  readonly #o: Required<Omit<RedisStoreOptions, 'route' | 'now'>> & Pick<RedisStoreOptions, 'route'>;
  readonly #now: () => number;
  readonly #log: Logger;
  #downSince: number | undefined;
  /** Why the connection is down (its last error's message: never the command, which may hold the password). */
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    this.#o = { prefix: 'hubex-router', dedupWindowMs: 3_600_000, retentionMs: 7 * 86_400_000, commandTimeoutMs: 5000, ...options };
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
    this.redis.defineCommand('hxrAccept', { numberOfKeys: 0, lua: ACCEPT_SCRIPT });
    this.queue = new Queue<DeliveryJobData, DeliveryJobResult | undefined, string>(QUEUE_NAME, { connection: this.redis, prefix: this.prefix });
    this.queue.on('error', (err: Error) => this.#down(err));
  }

  /** The key of one of this store's own records. */
  key(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async accept(events: readonly HubexEvent[]): Promise<AcceptResult> {
    await this.#connected();
    const now = this.#now();
    const route = this.#o.route ?? (() => []);
    // The normaliser made every string well formed: Redis's cjson refuses a lone UTF-16
    // surrogate, and the whole batch with it (see #refused for what happens if one gets here).
    const input = events.map((e) => ({
      key: e.id,
      idSource: e.idSource,
      eventID: e.eventID === null ? '' : String(e.eventID),
      name: e.name,
      entityType: e.entity?.type ?? '',
      entityId: e.entity === null ? '' : String(e.entity.id),
      raw: e.raw,
      handlers: JSON.stringify(route(e)),
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
          const e = events[i]!;
          const data: DeliveryJobData = {
            event: { seq: Number(seq), id, name: e.name, receivedAt: now, raw: e.raw },
            handler,
            attempt: 0,
            replays: 0,
            createdAt: now,
            updatedAt: now,
            dueAt: now,
            lastError: null,
            history: [],
          };
          return { name: handler, data, opts: this.jobOptions(jobIdOf(id, handler)) };
        }),
      );
      if (jobs.length > 0) {
        await this.queue.addBulk(jobs);
        // Marks the events whose jobs exist now; a later duplicate makes none (see the script).
        // Should this write fail, the answer is a 503: HubEx's retry finds the jobs there (a no-op) and marks them.
        const marks = this.redis.multi();
        for (const [id, , handlers] of rows) if (handlers !== '[]') marks.hset(this.key(`ev:${id}`), 'jobs', '1');
        const done = await marks.exec();
        const failed = done?.find(([err]) => err);
        if (!done || failed) throw failed?.[0] ?? new Error('the MULTI was aborted');
      }
      const out: AcceptedEvent[] = rows.map(([id, dup], i) => ({ id, name: events[i]!.name, duplicate: dup === 1 }));
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
          return new UnstorableEventError(`The ${FIELD_NAMES[field] ?? field} of event ${i} holds text Redis cannot store (a lone UTF-16 surrogate).`);
        }
      }
    }
    return undefined;
  }

  /** Job options: our own retries (attempt counts, backoff) over BullMQ's; BullMQ's only for a lost write. */
  jobOptions(jobId: string) {
    return {
      jobId,
      // A run whose outcome could not be written (Redis went away) is run again a second later;
      // a dead letter is an UnrecoverableError, which no attempt count holds back.
      attempts: 1_000_000,
      backoff: { type: 'fixed' as const, delay: 1000 },
      removeOnComplete: this.#o.retentionMs > 0 ? { age: Math.ceil(this.#o.retentionMs / 1000) } : false,
      removeOnFail: false,
    };
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

  async counts(): Promise<DeliveryCounts> {
    const [c, unrouted] = await Promise.all([this.queue.getJobCounts(...Object.values(STATES).flat()), this.redis.zcard(this.key('unrouted'))]);
    const sum = (s: DeliveryStatus) => countOf(c, s);
    return { pending: sum('pending'), running: sum('running'), done: sum('done'), dead: sum('dead'), unroutedEvents: unrouted };
  }

  async backlog(): Promise<Backlog> {
    const [c, unrouted, oldest] = await Promise.all([
      this.queue.getJobCounts(...STATES.pending, ...STATES.running, ...STATES.dead),
      this.redis.zcard(this.key('unrouted')),
      Promise.all([this.queue.getJobs(['waiting'], 0, 0, true), this.queue.getJobs(['active'], 0, 9, true), this.queue.getJobs(['delayed'], 0, 49, true)]),
    ]);
    const sum = (s: DeliveryStatus) => countOf(c, s);
    const created = oldest.flat().filter(Boolean).map((j) => (j as DeliveryJob).data.createdAt);
    return {
      pending: sum('pending'),
      running: sum('running'),
      dead: sum('dead'),
      unroutedEvents: unrouted,
      oldestCreatedAt: created.length ? Math.min(...created) : null,
    };
  }

  async list(filter: DeliveryFilter = {}): Promise<DeliveryRecord[]> {
    const limit = filter.limit ?? 100;
    const statuses = filter.status ? [filter.status] : (Object.keys(STATES) as DeliveryStatus[]);
    const out: DeliveryRecord[] = [];
    // Paging after a job that has since moved to another status (replayed, finished) starts
    // over, rather than answering an empty page that reads as the end.
    const anchorState = filter.afterId === undefined ? undefined : statusOfState(await this.queue.getJobState(String(filter.afterId)));
    let passed = filter.afterId === undefined || anchorState === undefined || !statuses.includes(anchorState);
    let scanned = 0;
    const PAGE = 200;
    // Walks each status's jobs oldest first; filters by handler and event name on the way, at
    // most 50,000 jobs (list dead letters with --status dead to narrow it).
    for (const status of statuses) {
      for (const state of STATES[status]) {
        for (let start = 0; out.length < limit && scanned < 50_000; start += PAGE) {
          const jobs = (await this.queue.getJobs([state], start, start + PAGE - 1, true)) as DeliveryJob[];
          scanned += jobs.length;
          for (const job of jobs) {
            if (!job?.id) continue;
            if (!passed) {
              passed = job.id === String(filter.afterId);
              continue;
            }
            if (filter.handler && job.data.handler !== filter.handler) continue;
            if (filter.eventName && job.data.event.name !== filter.eventName) continue;
            out.push(recordOf(job, status));
            if (out.length >= limit) break;
          }
          if (jobs.length < PAGE) break;
        }
      }
    }
    return out;
  }

  async get(id: DeliveryId): Promise<DeliveryDetail | undefined> {
    const job = (await this.queue.getJob(String(id))) as DeliveryJob | undefined;
    if (!job) return undefined;
    const status = statusOfState(await job.getState());
    if (!status) return undefined;
    return { ...recordOf(job, status), event: job.data.event, history: settledData(job).history };
  }

  async replay(selector: ReplaySelector, onProgress?: (p: { done: number; total: number }) => void): Promise<ReplayResult> {
    const replayed: DeliveryId[] = [];
    const skipped: DeliveryId[] = [];
    const again = async (job: DeliveryJob, state: 'failed' | 'completed') => {
      const now = this.#now();
      const d = settledData(job);
      await job.updateData({ ...d, attempt: 0, replays: d.replays + 1, dueAt: now, updatedAt: now });
      // A fresh cycle: stalls of the last one (BullMQ's counter) do not count against it.
      await this.redis.hdel(this.key(`${QUEUE_NAME}:${job.id}`), 'stc');
      try {
        await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
      } catch (err) {
        await job.updateData(job.data).catch(() => {}); // it moved meanwhile: leave its record as it was
        throw err;
      }
    };
    if ('ids' in selector) {
      for (const id of selector.ids) {
        const job = (await this.queue.getJob(String(id))) as DeliveryJob | undefined;
        const state = job ? await job.getState() : 'unknown';
        if (!job || (state !== 'failed' && state !== 'completed')) {
          skipped.push(id);
          continue;
        }
        try {
          await again(job, state);
          replayed.push(id);
        } catch {
          skipped.push(id); // it moved in between (another instance ran or replayed it)
        }
      }
      return { replayed, skipped };
    }
    // Every dead one (of a handler, of an event name) as the list stands now: a replayed one that
    // fails again joins the list anew and is not taken a second time by this call.
    const ids: string[] = [];
    for (let start = 0; ; start += 500) {
      const jobs = (await this.queue.getJobs(['failed'], start, start + 499, true)) as DeliveryJob[];
      for (const job of jobs) {
        if (!job?.id) continue;
        if (selector.handler && job.data.handler !== selector.handler) continue;
        if (selector.eventName && job.data.event.name !== selector.eventName) continue;
        ids.push(job.id);
      }
      if (jobs.length < 500) break;
    }
    for (const [i, id] of ids.entries()) {
      if (i > 0 && i % 100 === 0) onProgress?.({ done: i, total: ids.length });
      const job = (await this.queue.getJob(id)) as DeliveryJob | undefined;
      if (!job || (await job.getState()) !== 'failed') continue; // replayed by someone else meanwhile
      try {
        await again(job, 'failed');
        replayed.push(id);
      } catch {
        // taken by someone else meanwhile
      }
    }
    return { replayed, skipped };
  }

  async listEvents(filter: EventFilter = {}): Promise<EventRecord[]> {
    const limit = filter.limit ?? 100;
    const out: EventRecord[] = [];
    let after = filter.afterSeq ?? 0;
    for (let scanned = 0; out.length < limit && scanned < 50_000; ) {
      const ids = await this.redis.zrangebyscore(this.key('events'), `(${after}`, '+inf', 'LIMIT', 0, 200);
      if (ids.length === 0) break;
      scanned += ids.length;
      const rows = await this.#events(ids);
      for (const r of rows) {
        after = r.seq;
        if (filter.name && r.name !== filter.name) continue;
        out.push(r);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async getEvent(id: string): Promise<EventDetail | undefined> {
    const h = await this.redis.hgetall(this.key(`ev:${id}`));
    if (!h.seq) return undefined;
    const record = eventRecordOf(h);
    const handlers = JSON.parse(h.handlers ?? '[]') as string[];
    const deliveries = (await Promise.all(handlers.map((name) => this.get(jobIdOf(record.id, name))))).filter(
      (d): d is DeliveryDetail => d !== undefined,
    );
    return { ...record, raw: h.raw ?? '', deliveries: deliveries.map(({ event: _e, history: _h, ...d }) => d) };
  }

  /**
   * Deletes events received before `cutoff` whose deliveries all finished, with their jobs;
   * an event with a dead, pending or running delivery stays. Completed jobs of a kept event go
   * when BullMQ's removeOnComplete age passes.
   */
  async prune(cutoff: number): Promise<PruneResult> {
    let events = 0;
    let deliveries = 0;
    let after = 0;
    for (;;) {
      const ids = await this.redis.zrangebyscore(this.key('events'), `(${after}`, '+inf', 'LIMIT', 0, 200);
      if (ids.length === 0) break;
      const rows = await this.#events(ids);
      let old = false;
      for (const r of rows) {
        after = r.seq;
        if (r.receivedAt >= cutoff) break;
        old = true;
        const jobIds = r.handlers.map((h) => jobIdOf(r.id, h));
        const states = await Promise.all(jobIds.map((j) => this.queue.getJobState(j)));
        if (states.some((s) => s !== 'completed' && s !== 'unknown')) continue;
        for (const j of jobIds) {
          const job = await this.queue.getJob(j);
          // Checked again just before: a replay in between made it pending, and it stays.
          if (job && (await job.isCompleted())) {
            await job.remove().catch(() => {});
            deliveries++;
          }
        }
        await this.redis
          .multi()
          .del(this.key(`ev:${r.id}`))
          .zrem(this.key('events'), r.id)
          .zrem(this.key('unrouted'), r.id)
          .exec();
        events++;
      }
      if (!old || rows.at(-1)!.receivedAt >= cutoff) break;
    }
    return { events, deliveries };
  }

  async #events(ids: readonly string[]): Promise<(EventRecord & { handlers: string[] })[]> {
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.key(`ev:${id}`), ...EVENT_FIELDS);
    const res = (await pipe.exec()) ?? [];
    return res
      .map(([, values]) => Object.fromEntries(EVENT_FIELDS.map((f, i) => [f, (values as (string | null)[])[i] ?? undefined])) as Record<string, string>)
      .filter((h) => h.seq !== undefined)
      .map((h) => ({ ...eventRecordOf(h), handlers: JSON.parse(h.handlers ?? '[]') as string[] }));
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
      const timer = setTimeout(() => done(new StoreUnavailableError(`Redis did not answer within ${this.#o.commandTimeoutMs} ms.`)), this.#o.commandTimeoutMs);
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

/**
 * An ioredis connection for REDIS_URL. `failFast`: no offline queue and a command timeout, for
 * calls whose caller must know now (webhooks); otherwise BullMQ's worker settings (wait for Redis).
 */
export function redisConnection(url: string, o: { failFast: boolean; commandTimeoutMs?: number }): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: o.failFast ? 1 : null,
    enableOfflineQueue: !o.failFast,
    ...(o.failFast && o.commandTimeoutMs ? { commandTimeout: o.commandTimeoutMs } : {}),
    // Reconnect forever, at most a second apart: Redis restarts, instances keep going.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: false,
  });
}

/**
 * Closes a connection with QUIT, so that commands still on their way are answered rather than
 * rejected; a Redis that is away holds this up for a second at most.
 */
export async function closeConnection(connection: Redis): Promise<void> {
  // Not connected (Redis away, a refused password): nothing is on its way; QUIT would only wait.
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([connection.quit().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 1000)))]);
  clearTimeout(timer);
  connection.disconnect();
}

function recordOf(job: DeliveryJob, status: DeliveryStatus): DeliveryRecord {
  const d = status === 'done' ? settledData(job) : job.data;
  // A job BullMQ failed itself (stalled too often: its instance died each time) has no run of
  // ours that ended dead: its failedReason is the last error.
  const byBullmq = status === 'dead' && job.failedReason && d.history.at(-1)?.outcome !== 'dead';
  const lastError = byBullmq ? { message: job.failedReason, errorClass: 'Stalled' } : d.lastError;
  return {
    id: job.id!,
    eventId: d.event.id,
    eventName: d.event.name,
    handler: d.handler,
    status,
    attempts: d.attempt,
    replays: d.replays,
    dueAt: status === 'pending' ? d.dueAt : null,
    createdAt: d.createdAt,
    updatedAt: Math.max(d.updatedAt, job.finishedOn ?? 0),
    lastError,
  };
}

function eventRecordOf(h: Record<string, string>): EventRecord {
  const eventID = h.eventID ? Number(h.eventID) : null;
  return {
    seq: Number(h.seq),
    id: h.id ?? '',
    name: h.name ?? '',
    eventID: Number.isFinite(eventID) ? eventID : null,
    entity: h.entityType ? { type: h.entityType, id: h.entityId ?? '' } : null,
    receivedAt: Number(h.receivedAt),
    duplicates: Number(h.duplicates ?? 0),
    routed: (JSON.parse(h.handlers ?? '[]') as string[]).length,
  };
}

/** The event's field each value of the script's input comes from, for messages. */
const FIELD_NAMES: Readonly<Record<string, string>> = { key: 'id', entityType: 'entity type', entityId: 'entity id', raw: 'body' };
