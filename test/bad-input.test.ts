// Hostile and broken requests: each gets its documented 4xx with a clear message, nothing is
// stored, and the server keeps serving. The cases are in test/fixtures/bad-requests.json.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DEPTH } from '../src/events/parse-body.js';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, TOKEN } from './support/test-app.js';

interface Case {
  name: string;
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
  { name: 'a 10 MB body', body: `{"EventID":40,"AssetID":1,"pad":"${'x'.repeat(10 * 1024 * 1024)}"}`, status: 413, error: 'BODY_TOO_LARGE' },
  {
    name: 'a batch over MAX_BATCH',
    body: JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ EventID: 41, AssetID: i }))),
    status: 400,
    error: 'BATCH_TOO_LARGE',
  },
];

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(async () => t.close());

describe('bad input', () => {
  it.each([...fixtures, ...generated].map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const headers: Record<string, string> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    const before = readEvents(t.dir).length;
    const res = await t.app.inject({ method: 'POST', url: `/hooks/hubex/${TOKEN}`, headers, payload: c.body });
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

  it(`accepts JSON nested up to ${MAX_DEPTH} levels`, async () => {
    const deep = `{"EventID":40,"AssetID":2,"x":${'['.repeat(MAX_DEPTH - 1)}${']'.repeat(MAX_DEPTH - 1)}}`;
    expect((await t.post(deep)).statusCode).toBe(202);
  });
});
