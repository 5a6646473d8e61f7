// The SQLite store's connection, in its thread: opened (WAL, synchronous=FULL, migrated, its
// statements prepared, a write proving the file takes writes), failed (the reason recorded and
// logged once, the connection dropped), and opened again, at most every reopenIntervalMs.
import { mkdirSync } from 'node:fs';
import { StoreUnavailableError } from '../../errors.js';
import { Database, DRIVER } from './driver.js';
import { migrate } from './migrations.js';
import { prepare, type Statements } from './sql.js';

export interface ConnectionOptions {
  readonly dataDir: string;
  readonly file: string;
  readonly reopenIntervalMs: number;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, detail?: Record<string, unknown>) => void;
  /** Called once the database is open and migrated, before it is used (the ids are read back). */
  readonly loaded: (db: Database, s: Statements) => void;
}

export class Connection {
  db: Database | undefined;
  s: Statements | undefined;
  #lastOpenAttempt = Number.NEGATIVE_INFINITY;
  #reason = 'the store has not been opened';
  #closed = false;

  constructor(private readonly o: ConnectionOptions) {}

  /** Opens the store when it is not open and the last try is not too recent; throws when unavailable. */
  ensureOpen(now: number): void {
    if (this.#closed) throw new StoreUnavailableError('The store is closed: the router is stopping.');
    if (this.db?.open) return;
    if (now - this.#lastOpenAttempt >= this.o.reopenIntervalMs) this.#open(now);
    if (!this.db?.open) throw new StoreUnavailableError(this.#reason);
  }

  #open(now: number): void {
    this.#lastOpenAttempt = now;
    let db: Database | undefined;
    try {
      mkdirSync(this.o.dataDir, { recursive: true });
      db = new Database(this.o.file);
      db.pragma('journal_mode = WAL');
      // FULL: a commit survives power loss, not only a crash. Group commit makes it cheap.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      // Checkpoints are SQLite's own (wal_autocheckpoint, 1,000 pages) on this thread: a passive
      // checkpoint on another connection never catches up with a writer that never pauses, and
      // the WAL grows. After a checkpoint resets the WAL, it is cut back to this size.
      db.pragma('journal_size_limit = 67108864');
      migrate(db);
      const s = prepare(db);
      s.probe.run(new Date(now).toISOString()); // proves that the file takes writes
      this.o.loaded(db, s);
      this.db = db;
      this.s = s;
      this.o.log('info', 'store open', { file: this.o.file, driver: DRIVER });
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already unusable
      }
      this.fail(err);
    }
  }

  /** Records why the store cannot take writes (logged once per distinct reason) and returns the error. */
  fail(err: unknown): StoreUnavailableError {
    if (err instanceof StoreUnavailableError) return err;
    // The answer (readyz) names no path: it may be reachable from outside. The log has the file.
    const detail = (err instanceof Error ? err.message : String(err)).split(this.o.dataDir).join('DATA_DIR');
    const reason = `The store cannot take writes (${detail}); check that DATA_DIR is writable and the disk has room.`;
    if (reason !== this.#reason) this.o.log('error', 'store unavailable', { file: this.o.file, reason });
    this.#reason = reason;
    // A connection that failed a write may be in a bad state: open a fresh one next time.
    this.#drop();
    return new StoreUnavailableError(reason);
  }

  close(): void {
    this.#closed = true;
    this.#drop();
  }

  #drop(): void {
    try {
      this.db?.close();
    } catch {
      // already closed
    }
    this.db = undefined;
    this.s = undefined;
  }
}
