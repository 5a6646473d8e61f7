// What the process does with an error nobody caught: most often a handler's, from a promise it did
// not await or a throw in a timer callback. Node's default (exit at once) would drop the answers
// under way and, for a handler that does it on every run, crash-loop the router.
// - A rejected promise nobody handled: logged and counted; the router keeps serving. Nothing ran
//   halfway: the promise's own code had already finished with its throw.
// - An uncaught exception: logged and counted; the router stops cleanly (no new calls, the answers
//   under way finish, the store closes) and exits 1 for its supervisor to restart it. The runs under
//   way are not released: they run again after their lease with the attempt counted, so a handler
//   that takes the process down every time reaches its dead letter after MAX_ATTEMPTS starts.
import type { Logger } from 'pino';
import { classify } from '../delivery/classify.js';

export type UncaughtKind = 'rejection' | 'exception';

export interface ProcessGuardOptions {
  readonly log: Logger;
  /** Told of each error (for the metric). */
  readonly onError?: (kind: UncaughtKind) => void;
  /** Stops the router cleanly; the process exits 1 when it resolves (or after `fatalTimeoutMs`). */
  readonly stop: () => Promise<void>;
  /** The longest the clean stop after an uncaught exception may take. Default 10 s. */
  readonly fatalTimeoutMs?: number;
  /** Exits the process (a seam for tests). */
  readonly exit?: (code: number) => void;
}

/** What can be logged of a thrown value, whatever it is (never throws). */
export function describeThrown(value: unknown): { error: string; errorClass: string; stack?: string } {
  const f = classify(value);
  let stack: string | undefined;
  try {
    if (value instanceof Error && typeof value.stack === 'string') stack = value.stack.slice(0, 4000);
  } catch {
    // a hostile value: its message is enough
  }
  return { error: f.message, errorClass: f.errorClass, ...(stack ? { stack } : {}) };
}

/** Installs the process's handlers; returns a function that removes them. */
export function installProcessGuards(o: ProcessGuardOptions): () => void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const count = (kind: UncaughtKind) => {
    try {
      o.onError?.(kind);
    } catch {
      // the metric is not worth a second failure
    }
  };
  const onRejection = (reason: unknown) => {
    count('rejection');
    o.log.error(
      describeThrown(reason),
      'a promise was rejected and nothing handled it (a handler that does not await a call?); the router keeps serving',
    );
  };
  const onException = (err: unknown) => {
    // Should the clean stop hang until nothing keeps the loop alive, the exit still says failure.
    process.exitCode = 1;
    count('exception');
    o.log.fatal(
      describeThrown(err),
      'uncaught exception: the router stops cleanly and exits 1; runs under way run again after their lease',
    );
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => exit(1), o.fatalTimeoutMs ?? 10_000);
    timer.unref();
    o.stop().then(
      () => exit(1),
      () => exit(1),
    );
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
