// The retry schedule (exponential backoff with full jitter) and what an error means for a retry.
import { describe, expect, it } from 'vitest';
import { retryDelay } from '../src/delivery/backoff.js';
import { classify } from '../src/delivery/classify.js';
import { HandlerTimeoutError, PermanentError } from '../src/errors.js';

const opts = { baseMs: 1000, maxMs: 3_600_000 };

describe('retryDelay', () => {
  it('doubles its ceiling per attempt from RETRY_BASE_MS, and never passes RETRY_MAX_MS', () => {
    const ceilings = Array.from({ length: 16 }, (_, i) => retryDelay(i + 1, opts, () => 1));
    expect(ceilings.slice(0, 6)).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000]);
    expect(ceilings.at(-1)).toBe(3_600_000);
    expect(Math.max(...ceilings)).toBe(3_600_000);
    // huge attempt numbers neither overflow nor go negative
    expect(retryDelay(10_000, opts, () => 1)).toBe(3_600_000);
    expect(retryDelay(0, opts, () => 1)).toBe(1000);
  });

  it('is jittered over the whole range [0, ceiling] (full jitter)', () => {
    expect(retryDelay(3, opts, () => 0)).toBe(0);
    expect(retryDelay(3, opts, () => 0.5)).toBe(2000);
    const samples = Array.from({ length: 500 }, () => retryDelay(4, opts));
    expect(samples.every((d) => d >= 0 && d <= 8000)).toBe(true);
    expect(new Set(samples).size).toBeGreaterThan(100); // spread, not one value
    expect(Math.min(...samples)).toBeLessThan(2000);
    expect(Math.max(...samples)).toBeGreaterThan(6000);
  });

  it("takes a 429's Retry-After as a floor", () => {
    expect(retryDelay(1, opts, () => 0, 5000)).toBe(5000);
    expect(retryDelay(8, opts, () => 1, 5000)).toBe(128_000);
  });

  it('never waits past RETRY_MAX_MS, whatever Retry-After (or a handler error) says', () => {
    expect(retryDelay(1, opts, () => 0, 86_400_000 * 1000)).toBe(3_600_000);
    expect(retryDelay(1, opts, () => 0, 1e308)).toBe(3_600_000);
    expect(retryDelay(1, opts, () => 0, Number.POSITIVE_INFINITY)).toBe(3_600_000);
    expect(retryDelay(1, opts, () => 0, Number.NaN)).toBe(3_600_000);
    expect(retryDelay(1, opts, () => 0, -5)).toBe(0);
  });
});

describe('classify', () => {
  it('sends PermanentError and the HubEx answers no retry can fix to the dead letters', () => {
    expect(classify(new PermanentError('closed task'))).toMatchObject({ retry: false, errorClass: 'PermanentError' });
    for (const status of [400, 403, 404, 409, 422]) {
      expect(classify(Object.assign(new Error('x'), { status }))).toMatchObject({ retry: false });
    }
  });

  it('retries network errors, timeouts, 5xx and 429 (with its Retry-After), and keeps the trace identifier', () => {
    expect(classify(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).retry).toBe(true);
    expect(classify(new HandlerTimeoutError(100))).toMatchObject({ retry: true, errorClass: 'HandlerTimeoutError' });
    for (const status of [500, 502, 503, 504]) {
      expect(classify(Object.assign(new Error('x'), { status, traceIdentifier: '0HN1' }))).toMatchObject({ retry: true, traceId: '0HN1' });
    }
    expect(classify(Object.assign(new Error('slow down'), { status: 429, retryable: false, retryAfterMs: 2000 }))).toMatchObject({
      retry: true,
      notBeforeMs: 2000,
    });
  });

  it('never throws, whatever a handler throws', () => {
    const cyclic = Object.create(null) as Record<string, unknown>;
    cyclic.self = cyclic;
    expect(() => String(cyclic)).toThrow(); // what made the old classify throw
    expect(classify(cyclic)).toMatchObject({ retry: true, errorClass: 'object', message: 'a thrown object that cannot be shown' });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(classify(proxy)).toMatchObject({ retry: true, errorClass: 'unreadable' });
    const hostile = new Error('x');
    Object.defineProperty(hostile, 'message', {
      get: () => {
        throw new Error('no');
      },
    });
    expect(classify(hostile)).toMatchObject({ retry: true, errorClass: 'unreadable' });
    expect(classify(10n)).toMatchObject({ retry: true, message: '10' });
    expect(classify(undefined)).toMatchObject({ retry: true, errorClass: 'undefined' });
    expect(classify(null)).toMatchObject({ retry: true, message: 'null' });
  });

  it('keeps at most 2,000 characters of a message', () => {
    const f = classify(new Error('x'.repeat(1_000_000)));
    expect(f.message.length).toBe(2001);
    expect(f.message.endsWith('…')).toBe(true);
  });

  it('describes a thrown non-Error readably', () => {
    expect(classify('plain string')).toMatchObject({ retry: true, message: 'plain string', errorClass: 'string' });
    expect(classify({ status: 404 })).toMatchObject({ retry: false, message: '{"status":404}' });
  });
});
