// Handlers share the event loop with the webhook intake, so handler calls are started in the check
// phase, after the I/O of the turn, in slices of at most SLICE_MS. One that computed without
// yielding (its synchronous part, before its first await) ends the slice and is followed by a
// pause as long as it took, up to MAX_PAUSE_MS, in which the loop serves nothing but I/O: a webhook on a new
// connection needs several turns (accept, read, the store's answer), and Node accepts about one
// new connection per turn while each turn is held up by a handler. Runs started one after another
// in microtasks would keep I/O out for as long as runs were waiting.

type Start = () => number;

/** The longest pause after a handler call that held the loop; the shortest that counts is MIN_BLOCK_MS. */
const MAX_PAUSE_MS = 50;
const MIN_BLOCK_MS = 10;

const waiting: Start[] = [];
let scheduled = false;
/** No handler starts before this (performance.now()): the pause after one that held the loop. */
let pauseUntil = 0;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  const wait = pauseUntil - performance.now();
  // From inside the check phase, setImmediate runs in the next turn, after that turn's I/O.
  if (wait > 0) setTimeout(next, wait);
  else setImmediate(next);
}

/** Starts that yield at once (the usual handler, awaiting I/O) go together, up to this much time per turn. */
const SLICE_MS = 5;

function next(): void {
  scheduled = false;
  const until = performance.now() + SLICE_MS;
  while (waiting.length > 0) {
    const took = waiting.shift()!();
    if (took >= MIN_BLOCK_MS) {
      pauseUntil = performance.now() + Math.min(took, MAX_PAUSE_MS);
      break;
    }
    if (performance.now() >= until) break;
  }
  if (waiting.length > 0) schedule();
}

/**
 * Calls `fn` in a turn of its own, after the I/O that was waiting; resolves with its result.
 * `took` is told how long its synchronous part ran (what it held the event loop for).
 */
export function inTurn<T>(fn: () => T | Promise<T>, took?: (ms: number) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    waiting.push(() => {
      const started = performance.now();
      try {
        resolve(fn());
      } catch (err) {
        reject(err);
      }
      const ms = performance.now() - started;
      took?.(ms);
      return ms;
    });
    schedule();
  });
}
