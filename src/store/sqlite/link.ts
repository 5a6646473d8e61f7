// The SQLite store's link to its thread (./thread.ts): calls travel in messages, those of one turn
// together, and each promise settles with the thread's answer. A thread that dies fails the calls
// in flight (StoreUnavailableError) and a new one is started at the next call, at most every
// reopenIntervalMs.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../../errors.js';
import type { Call, Op, WorkerMessage } from './protocol.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface ThreadLinkOptions {
  /** What the thread is started with (the writer's options). */
  readonly workerData: Record<string, unknown>;
  /** The least time between two starts of the thread after one died. */
  readonly reopenIntervalMs: number;
  /** The database file, for the log. */
  readonly file: string;
  readonly log: Logger;
  readonly now: () => number;
}

export class ThreadLink {
  readonly #o: ThreadLinkOptions;
  #worker: Worker | undefined;
  #workerDown: string | undefined;
  #lastSpawn = Number.NEGATIVE_INFINITY;
  readonly #pending = new Map<number, Pending>();
  #outbox: Call[] = [];
  #scheduled = false;
  #nextId = 1;
  #closed: Promise<void> | undefined;

  constructor(o: ThreadLinkOptions) {
    this.#o = o;
    this.#spawn();
  }

  /** One call to the thread: its answer, or StoreUnavailableError. */
  call(op: Op, args: unknown[]): Promise<unknown> {
    return this.#call(op, args);
  }

  /** Commits what was submitted (those calls are answered), then stops the thread; later calls reject. */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  /** Ends the thread as a crash would (fault injection for tests). */
  async crash(): Promise<void> {
    await this.#worker?.terminate();
  }

  async #shutdown(): Promise<void> {
    this.#flush();
    const worker = this.#worker;
    if (!worker) return;
    worker.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.on('message', (m: WorkerMessage) => {
        if ('closed' in m) void worker.terminate();
      });
      worker.postMessage('close');
    });
    this.#failAll('The store is closed: the router is stopping.');
  }

  #call(op: Op, args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError('The store is closed: the router is stopping.'));
    if (!this.#worker && this.#o.now() - this.#lastSpawn >= this.#o.reopenIntervalMs) this.#spawn();
    if (!this.#worker) {
      return Promise.reject(new StoreUnavailableError(this.#workerDown ?? 'The store is not running.'));
    }
    const id = this.#nextId++;
    const promise = new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#outbox.push({ id, op, args, now: this.#o.now() });
    this.#worker.ref(); // a call in flight keeps the process alive until it is answered
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Sent as soon as the current callback is done. The worker batches what reaches it while it
      // commits, so batches grow with the load by themselves, and a lone call waits for nobody.
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#outbox.length === 0 || !this.#worker) return;
    const calls = this.#outbox;
    this.#outbox = [];
    this.#worker.postMessage({ calls });
  }

  #spawn(): void {
    this.#lastSpawn = this.#o.now();
    const worker = startWorker(this.#o.workerData);
    worker.on('message', (m: WorkerMessage) => this.#onMessage(m));
    worker.on('error', (err) => this.#onWorkerDown(worker, `its worker thread failed: ${err.message}`));
    worker.on('exit', (code) => this.#onWorkerDown(worker, `its worker thread stopped (exit code ${code})`));
    worker.unref();
    this.#worker = worker;
  }

  #onMessage(m: WorkerMessage): void {
    if ('log' in m) {
      this.#o.log[m.log.level](m.log.detail ?? {}, m.log.msg);
      return;
    }
    if (!('replies' in m)) return;
    for (const r of m.replies) {
      const p = this.#pending.get(r.id);
      if (!p) continue;
      this.#pending.delete(r.id);
      if (r.error === undefined) p.resolve(r.value);
      else if (r.error.unavailable) p.reject(new StoreUnavailableError(r.error.message));
      else p.reject(Object.assign(new Error(r.error.message), { name: r.error.name }));
    }
    if (this.#pending.size === 0) this.#worker?.unref();
  }

  #onWorkerDown(worker: Worker, why: string): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    if (this.#closed) return;
    // The next worker starts no sooner than reopenIntervalMs after this one died, not after it started.
    this.#lastSpawn = this.#o.now();
    this.#workerDown = `The store is not available: ${why}.`;
    this.#o.log.error({ file: this.#o.file, reason: this.#workerDown }, 'store unavailable');
    this.#outbox = [];
    this.#failAll(this.#workerDown);
  }

  #failAll(reason: string): void {
    for (const p of this.#pending.values()) p.reject(new StoreUnavailableError(reason));
    this.#pending.clear();
  }
}

/** Starts ./thread.js; under vitest or tsx the sources are .ts, and tsx's loader is registered first. */
function startWorker(workerData: Record<string, unknown>): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? './thread.ts' : './thread.js', import.meta.url);
  if (!fromSource) return new Worker(url, { workerData });
  // The ESM build of tsx's API (require.resolve finds the CommonJS one, which cannot register here).
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const source = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(source, { eval: true, workerData });
}
