// Which failures the HubEx client retries, how long it waits, and what its errors say: against the
// fake HubEx over real HTTP. Counts of calls, not timings, carry the assertions.
import { describe, expect, it } from 'vitest';
import { useFakeHubex } from './support/hubex-harness.js';
import { classify } from '../src/delivery/classify.js';
import { HubexApiError, isHubexApiError } from '../src/hubex/errors.js';

const h = useFakeHubex({ setup: (hubex) => hubex.tasks.set(5, { number: 'T-5', taskStageID: 2 }) });
const client = h.client;

const statuses = (path: string) => h.hubex.calls.filter((c) => c.path === path).map((c) => c.status);
const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('the call should fail'),
    (e: unknown) => e as HubexApiError,
  );

describe('what is retried', () => {
  it('a 500 is not retried inside the call, but the error says a later retry may help', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 500 });
    const err = await failure(c.work.getTask(5));
    expect(err).toMatchObject({ status: 500, retryable: true });
    expect(statuses('/WORK/Tasks/5')).toEqual([500]);
    expect(classify(err)).toMatchObject({ retry: true, errorClass: 'HubexApiError' });
  });

  it('403 and 404 are not retried, and send a delivery to the dead letters', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 403 });
    const forbidden = await failure(c.work.getTask(5));
    const missing = await failure(c.work.getTask(6));
    expect([forbidden.status, missing.status]).toEqual([403, 404]);
    expect(statuses('/WORK/Tasks/5')).toEqual([403]);
    expect(statuses('/WORK/Tasks/6')).toEqual([404]);
    expect(classify(forbidden).retry).toBe(false);
    expect(classify(missing).retry).toBe(false);
  });

  it('a 429 without Retry-After is retried with backoff; a PUT (idempotent) is retried on a 503', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 429, times: 2 });
    await c.work.getTask(5);
    expect(statuses('/WORK/Tasks/5')).toEqual([429, 429, 200]);
    const id = await c.msg.webhooks.create({
      name: 'w',
      uri: 'https://example.com/hooks/hubex/t',
      events: [40],
      taskStages: [],
      isActive: false,
    });
    h.hubex.fail({ path: `/MSG/Webhooks/activate/${id}`, status: 503 });
    await c.msg.webhooks.activate(id);
    expect(statuses(`/MSG/Webhooks/activate/${id}`)).toEqual([503, 202]);
    expect(h.hubex.webhooks.get(id)?.isActive).toBe(true);
  });

  it('a Retry-After longer than maxRetryAfterMs is not slept through: the error carries it for the delivery', async () => {
    const c = client({ maxRetryAfterMs: 5_000 });
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 429, retryAfterSec: 120 });
    const started = Date.now();
    const err = await failure(c.work.getTask(5));
    expect(Date.now() - started).toBeLessThan(5_000); // it did not wait two minutes
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterMs: 120_000 });
    expect(statuses('/WORK/Tasks/5')).toEqual([429]);
    expect(classify(err)).toMatchObject({ retry: true, notBeforeMs: 120_000 });
  });

  it('a POST whose connection dropped is not sent again, unless the caller marks it safe', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/TaskStagingHistory', drop: true });
    const err = await failure(c.work.moveToStage(5, 3));
    expect(err).toMatchObject({ status: 0, retryable: true });
    expect(err.message).toMatch(/^HubEx did not answer POST \/WORK\/TaskStagingHistory \(.+\); check HUBEX_BASE_URL and the network/);
    expect(statuses('/WORK/TaskStagingHistory')).toEqual([0]);
    expect(h.hubex.tasks.get(5)?.taskStageID).toBe(2);

    h.hubex.fail({ path: '/WORK/Tasks/5/conversation', drop: true });
    await c.work.addMessage(5, { message: 'once' }, { retrySafe: true });
    expect(statuses('/WORK/Tasks/5/conversation')).toEqual([0, 201]);
    expect(h.hubex.conversations.get(5)).toEqual([{ message: 'once', isExternal: false }]);
  });

  it('gives up after `retries` retries: 1 + retries calls in all', async () => {
    const c = client({ retries: 3 });
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 502, times: 10 });
    const err = await failure(c.work.getTask(5));
    expect(err.status).toBe(502);
    expect(statuses('/WORK/Tasks/5')).toEqual([502, 502, 502, 502]);
  });
});

describe('error messages', () => {
  it('reads an array of ErrorModel (how the documents describe 409 and 500 answers)', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 409, errorAs: 'array' });
    const err = await failure(c.work.getTask(5));
    expect(err).toMatchObject({
      status: 409,
      code: 'Injected',
      hubexMessage: 'injected 409',
      traceIdentifier: expect.stringMatching(/^0HN/),
    });
    expect(err.message).toMatch(
      /^HubEx answered 409 to GET \/WORK\/Tasks\/5 \(HubEx found the data invalid or in conflict; check the values sent\): "injected 409" \[Injected\], trace 0HN\w+:00000001$/,
    );
  });

  it("a 403 tells a person to check the API user's roles, with the trace HubEx support asks for", async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 403 });
    const err = await failure(c.work.getTask(5));
    expect(err.message).toMatch(
      /^HubEx answered 403 to GET \/WORK\/Tasks\/5 \(no access: permission or licence.*check the API user's roles\).*, trace 0HN/,
    );
    expect(isHubexApiError(err)).toBe(true);
    expect(err).toBeInstanceOf(HubexApiError);
  });

  it('a 204 for a single record ("success, no such record") is an error, never an undefined task', async () => {
    const c = client();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 204 });
    const err = await failure(c.work.getTask(5));
    expect(err).toMatchObject({ status: 204, retryable: false, path: '/WORK/Tasks/5' });
    expect(err.message).toMatch(/^HubEx answered 204 to GET \/WORK\/Tasks\/5 \(nothing there: .*does not exist or was deleted\)$/);
    expect(classify(err).retry).toBe(false);
  });

  it('a timeout names the call and the limit, and is retryable', async () => {
    const c = client({ timeoutMs: 100, retries: 1 });
    h.hubex.fail({ path: '/ES/Assets/3', latencyMs: 1_000, times: 2 });
    const err = await failure(c.es.getAsset(3));
    expect(err).toMatchObject({ status: 0, retryable: true, method: 'GET', path: '/ES/Assets/3' });
    expect(err.message).toMatch(/^HubEx did not answer GET \/ES\/Assets\/3 \(no answer within 100 ms\)/);
  });
});
