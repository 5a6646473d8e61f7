// Hostile and broken requests: each gets its documented 4xx with a clear message, nothing is
// stored, memory does not grow, and the server keeps serving. The corpus is
// test/fixtures/bad-requests.json (over 100 cases); a few large ones are generated here.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DEPTH } from '../src/events/parse-body.js';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, TOKEN } from './support/test-app.js';

interface Case {
  name: string;
  /** POST unless said; `path` defaults to the webhook URL, `{token}` is replaced by a valid one. */
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  contentType?: string | null;
  body: string;
  status: number;
  error: string;
}

const fixtures: Case[] = JSON.parse(readFileSync(new URL('./fixtures/bad-requests.json', import.meta.url), 'utf8'));

const generated: Case[] = [
  { name: 'JSON nested 5,000 deep', body: '['.repeat(5000) + ']'.repeat(5000), status: 400, error: 'TOO_DEEP' },
  {
    name: 'an object nested 100,000 deep inside an event',
    body: `{"EventID":40,"AssetID":1,"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    status: 400,
    error: 'TOO_DEEP',
  },
  {
    name: 'a 10 MB body',
    body: `{"EventID":40,"AssetID":1,"pad":"${'x'.repeat(10 * 1024 * 1024)}"}`,
    status: 413,
    error: 'BODY_TOO_LARGE',
  },
  {
    name: 'an EventUID of 900 KB (ids are kept in memory)',
    body: JSON.stringify({ EventID: 40, AssetID: 1, EventUID: 'u'.repeat(900 * 1024) }),
    status: 400,
    error: 'FIELD_TOO_LONG',
  },
  {
    name: 'a key of 900 KB (keys are cached)',
    body: JSON.stringify({ EventID: 40, AssetID: 1, ['k'.repeat(900 * 1024)]: 1 }),
    status: 400,
    error: 'FIELD_TOO_LONG',
  },
  {
    name: 'a batch over MAX_BATCH',
    body: JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ EventID: 41, AssetID: i }))),
    status: 400,
    error: 'BATCH_TOO_LARGE',
  },
];

// A real garbage collection before each measurement (the flag can be set at run time).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(async () => t.close());

function send(c: Case) {
  const headers: Record<string, string> = { ...c.headers };
  if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
  const url = (c.path ?? `/hooks/hubex/${TOKEN}`).replace('{token}', TOKEN);
  const method = (c.method ?? 'POST') as 'POST';
  return t.app.inject({ method, url, headers, ...(c.body === '' && method !== 'POST' ? {} : { payload: c.body }) });
}

describe('bad input', () => {
  it('the corpus holds at least 100 cases, each with a distinct name', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(100);
    expect(new Set(fixtures.map((c) => c.name)).size).toBe(fixtures.length);
  });

  it.each([...fixtures, ...generated].map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = readEvents(t.dir).length;
    const res = await send(c);
    expect(res.statusCode).toBe(c.status);
    const json = res.json();
    expect(json.error).toBe(c.error);
    expect(json.message).toMatch(/^[A-Z].{20,}\.$/);
    expect(json.message.length).toBeLessThan(400);
    expect(json.requestId).toBe(res.headers['x-request-id']);
    // nothing stored, nothing polluted, and a good request is served right after
    expect(readEvents(t.dir)).toHaveLength(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const good = await t.post({ EventID: 40, AssetID: 1000 + before });
    expect(good.statusCode).toBe(202);
    expect(readEvents(t.dir)).toHaveLength(before + 1);
  });

  it('the whole corpus, sent 20 times over, does not grow memory', async () => {
    const round = async () => {
      for (const c of fixtures) expect((await send(c)).statusCode).toBe(c.status);
    };
    // The test's own log capture keeps every line: empty it, so that only the router is measured.
    const rounds = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await round();
        t.logs.lines.length = 0;
      }
    };
    await rounds(3); // warm up: JIT, caches, pools
    const heap = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const start = heap();
    await rounds(20);
    // 2,340 refused requests: a leak of even 2 KB each would be 4.6 MB.
    const grown = heap() - start;
    expect(grown).toBeLessThan(4 * 1024 * 1024);
    expect((await t.post({ EventID: 40, AssetID: 999_999 })).statusCode).toBe(202);
  }, 60_000);

  it(`accepts JSON nested up to ${MAX_DEPTH} levels`, async () => {
    const deep = `{"EventID":40,"AssetID":2,"x":${'['.repeat(MAX_DEPTH - 1)}${']'.repeat(MAX_DEPTH - 1)}}`;
    expect((await t.post(deep)).statusCode).toBe(202);
  });
});
