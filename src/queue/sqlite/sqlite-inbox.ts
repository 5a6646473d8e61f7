// The SQLite inbox: one better-sqlite3 file in DATA_DIR, WAL, synchronous=FULL, group commit.
// When the file cannot be opened or written, it answers "unavailable" (the route says 503) and
// tries to open it again, instead of taking the process down.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../../errors.js';
import type { HubexEvent } from '../../events/event.js';
import { GroupCommit } from '../group-commit.js';
import type { AcceptedEvent, AcceptResult, Health, Inbox } from '../inbox.js';
import { type Checkpointer, startCheckpointer } from './checkpointer.js';
import { migrate } from './migrations.js';

export interface SqliteInboxOptions {
  readonly dataDir: string;
  /** How long an identical body without a unique id of its own counts as a duplicate. Default 1 h. */
  readonly dedupWindowMs?: number;
  /** How often the worker thread checkpoints the WAL; 0 leaves it to SQLite on the request thread. Default 200 ms. */
  readonly checkpointIntervalMs?: number;
  /** The least time between two attempts to open an unavailable store. Default 1 s. */
  readonly reopenIntervalMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export const DB_FILE = 'hubex-router.db';

interface Statements {
  latest: Database.Statement<[string], { seq: number; id: string; id_source: string; received_at: number }>;
  countKey: Database.Statement<[string], { n: number }>;
  insert: Database.Statement<unknown[]>;
  duplicate: Database.Statement<[number, number]>;
  probe: Database.Statement<[string]>;
}

export class SqliteInbox implements Inbox {
  readonly file: string;
  readonly #opts: Required<Omit<SqliteInboxOptions, 'log'>> & { log: Logger };
  #db: Database.Database | undefined;
  #stmts: Statements | undefined;
  #checkpointer: Checkpointer | undefined;
  #closed = false;
  #lastOpenAttempt = 0;
  #unavailableReason = 'the store has not been opened';
  readonly #stats = { commits: 0, accepted: 0, duplicates: 0 };
  readonly #commits = new GroupCommit<readonly HubexEvent[], AcceptResult>((batch) => this.#write(batch));

  constructor(options: SqliteInboxOptions) {
    this.#opts = {
      dedupWindowMs: 3_600_000,
      checkpointIntervalMs: 200,
      reopenIntervalMs: 1000,
      now: Date.now,
      ...options,
    };
    this.file = join(options.dataDir, DB_FILE);
    this.#tryOpen();
  }

  async accept(events: readonly HubexEvent[]): Promise<AcceptResult> {
    this.#ensureOpen();
    return this.#commits.submit(events);
  }

  async health(): Promise<Health> {
    try {
      this.#ensureOpen();
      this.#stmts!.probe.run(new Date(this.#opts.now()).toISOString());
      return { ok: true };
    } catch (err) {
      const reason = err instanceof StoreUnavailableError ? err.message : this.#fail(err).message;
      return { ok: false, reason };
    }
  }

  /** Counters since start: transactions committed, events stored, duplicates answered. */
  get stats(): Readonly<{ commits: number; accepted: number; duplicates: number }> {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#commits.flushNow();
    this.#closed = true;
    await this.#checkpointer?.stop();
    this.#checkpointer = undefined;
    this.#db?.close();
    this.#db = undefined;
    this.#stmts = undefined;
  }

  /** Opens the store if it is not open and the last attempt is not too recent; throws when unavailable. */
  #ensureOpen(): void {
    if (this.#closed) throw new StoreUnavailableError('The store is closed: the router is stopping.');
    if (this.#db?.open) return;
    if (this.#opts.now() - this.#lastOpenAttempt >= this.#opts.reopenIntervalMs) this.#tryOpen();
    if (!this.#db?.open) throw new StoreUnavailableError(this.#unavailableReason);
  }

  #tryOpen(): void {
    this.#lastOpenAttempt = this.#opts.now();
    let db: Database.Database | undefined;
    try {
      mkdirSync(this.#opts.dataDir, { recursive: true });
      db = new Database(this.file);
      db.pragma('journal_mode = WAL');
      // FULL: a commit survives power loss, not only a crash; group commit makes it nearly free.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      migrate(db);
      const stmts = prepare(db);
      stmts.probe.run(new Date(this.#opts.now()).toISOString()); // proves the file takes writes
      if (this.#opts.checkpointIntervalMs > 0) {
        db.pragma('wal_autocheckpoint = 0');
        this.#checkpointer = startCheckpointer(this.file, this.#opts.checkpointIntervalMs, (reason) => {
          // Without the worker the WAL would grow for ever: hand checkpoints back to SQLite.
          this.#opts.log.warn({ reason }, 'WAL checkpoint worker failed; SQLite checkpoints on the request thread now');
          if (this.#db?.open) this.#db.pragma('wal_autocheckpoint = 1000');
        });
      }
      this.#db = db;
      this.#stmts = stmts;
      this.#opts.log.info({ file: this.file }, 'store open');
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already unusable
      }
      this.#fail(err);
    }
  }

  /** Records why the store is unavailable, logs it, and returns the error to throw. */
  #fail(err: unknown): StoreUnavailableError {
    const detail = err instanceof Error ? err.message : String(err);
    const reason = `The store at ${this.file} cannot take writes (${detail}); check that DATA_DIR is writable and the disk has room.`;
    if (reason !== this.#unavailableReason) this.#opts.log.error({ err }, 'store unavailable');
    this.#unavailableReason = reason;
    return new StoreUnavailableError(reason, { cause: err });
  }

  /** One transaction for every accept of this event-loop turn. */
  #write(batch: readonly (readonly HubexEvent[])[]): AcceptResult[] {
    const db = this.#db;
    const s = this.#stmts;
    if (!db?.open || !s) throw new StoreUnavailableError(this.#unavailableReason);
    const now = this.#opts.now();
    const windowMs = this.#opts.dedupWindowMs;
    try {
      const results = db.transaction(() =>
        batch.map((events) => {
          let accepted = 0;
          const out: AcceptedEvent[] = [];
          for (const e of events) {
            const prior = s.latest.get(e.id);
            const stillDuplicate =
              prior !== undefined && (prior.id_source === 'payload' || now - prior.received_at < windowMs);
            if (prior && stillDuplicate) {
              s.duplicate.run(now, prior.seq);
              out.push({ id: prior.id, name: e.name, duplicate: true });
              continue;
            }
            // The same body again after the dedup window is a new event: give it an id of its own.
            const id = prior ? `${e.id}.${s.countKey.get(e.id)!.n + 1}` : e.id;
            const { raw, ...rest } = e;
            s.insert.run(
              id,
              e.id,
              e.idSource,
              e.eventID,
              e.name,
              e.entity?.type ?? null,
              e.entity === null ? null : String(e.entity.id),
              now,
              JSON.stringify(id === e.id ? rest : { ...rest, id }),
              raw,
            );
            accepted++;
            out.push({ id, name: e.name, duplicate: false });
          }
          return { accepted, duplicates: events.length - accepted, events: out };
        }),
      )();
      this.#stats.commits++;
      for (const r of results) {
        this.#stats.accepted += r.accepted;
        this.#stats.duplicates += r.duplicates;
      }
      return results;
    } catch (err) {
      throw this.#fail(err);
    }
  }
}

function prepare(db: Database.Database): Statements {
  return {
    latest: db.prepare(
      'SELECT seq, id, id_source, received_at FROM events WHERE dedup_key = ? ORDER BY seq DESC LIMIT 1',
    ),
    countKey: db.prepare('SELECT count(*) AS n FROM events WHERE dedup_key = ?'),
    insert: db.prepare(
      `INSERT INTO events (id, dedup_key, id_source, event_id, name, entity_type, entity_id, received_at, event, raw)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    duplicate: db.prepare('UPDATE events SET duplicates = duplicates + 1, last_duplicate_at = ? WHERE seq = ?'),
    probe: db.prepare(`INSERT INTO meta (key, value) VALUES ('last_write_probe', ?)
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
  };
}
