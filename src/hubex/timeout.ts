// The timeout of HubEx calls, one signal shared by the calls that start within the same 100 ms:
// it aborts them all `timeoutMs` (plus up to 100 ms) after they began. A controller and a timer
// per call would be a noticeable part of a call's cost under load; sharing them makes it one of
// each per 100 ms, for a timeout that is at most 100 ms late.
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';

/** A function that gives the signal for a call starting now. */
export function sharedTimeout(timeoutMs: number): () => AbortSignal {
  let bucket: { readonly startedAt: number; readonly signal: AbortSignal } | undefined;
  return () => {
    const now = performance.now();
    if (!bucket || now - bucket.startedAt >= 100) {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal); // many calls listen to one signal, by design
      setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 100).unref();
      bucket = { startedAt: now, signal: controller.signal };
    }
    return bucket.signal;
  };
}
