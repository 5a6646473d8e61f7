// task.modified, the event the router makes for a change no push covered: its id, its raw JSON
// (bounded, no built-in keys), the event handlers get (also when rebuilt from the store), and
// the name reserved for it (a HubEx catalogue entry never takes it; subscribing never warns).
import { describe, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { HandlerRegistry } from '../src/delivery/registry.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { loadCatalogue } from '../src/events/load-catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { eventRebuilder } from '../src/events/rebuild.js';
import { parseHubexTime, taskModifiedEvent, taskModifiedId, taskModifiedRaw } from '../src/events/synthesized.js';
import { createLogger } from '../src/observability/log.js';

describe('task.modified', () => {
  it('reads HubEx times as UTC, with or without a zone, and nothing else', () => {
    expect(parseHubexTime('2026-12-03T06:00:00Z')).toBe(Date.UTC(2026, 11, 3, 6));
    expect(parseHubexTime('2026-12-03T06:00:00.250')).toBe(Date.UTC(2026, 11, 3, 6, 0, 0, 250));
    expect(parseHubexTime('2026-12-03T09:00:00+03:00')).toBe(Date.UTC(2026, 11, 3, 6));
    expect(parseHubexTime('2026-12-03')).toBe(Date.UTC(2026, 11, 3));
    for (const bad of ['', 'yesterday', '12/03/2026', '2026-13-45T99:00:00Z']) expect(parseHubexTime(bad)).toBeNaN();
    // Written with a space, a lower-case t, .NET's seven digits, or no colon in the offset: still UTC,
    // whatever this machine's own zone is.
    const zone = process.env.TZ;
    try {
      for (const tz of ['Europe/Moscow', 'America/New_York', 'UTC']) {
        process.env.TZ = tz;
        expect(parseHubexTime('2026-12-03 06:00:00')).toBe(Date.UTC(2026, 11, 3, 6));
        expect(parseHubexTime('2026-12-03t06:00:00z')).toBe(Date.UTC(2026, 11, 3, 6));
        expect(parseHubexTime('2026-12-03T06:00:00.1234567')).toBe(Date.UTC(2026, 11, 3, 6, 0, 0, 123));
        expect(parseHubexTime('2026-12-03T09:00:00+0300')).toBe(Date.UTC(2026, 11, 3, 6));
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it("keeps the task's fields under its id, without `id` or a built-in key, and only the id and time when too large", () => {
    const fields = JSON.parse(
      '{"id": 5, "title": "Pump", "lastModified": "2026-12-03T06:00:00Z", "__proto__": {"x": 1}, "constructor": 1}',
    );
    expect(JSON.parse(taskModifiedRaw(5, fields))).toEqual({ taskID: 5, title: 'Pump', lastModified: '2026-12-03T06:00:00Z' });
    const big = { lastModified: '2026-12-03T06:00:00Z', notes: 'x'.repeat(300_000) };
    expect(JSON.parse(taskModifiedRaw(5, big))).toEqual({ taskID: 5, lastModified: '2026-12-03T06:00:00Z', truncated: true });
    expect(taskModifiedRaw(5, { title: 'a\ud800b' })).toBe('{"taskID":5,"title":"a\ufffdb"}');
  });

  it('is a task event from the poll, its id from the task and the change time; rebuilt the same from the store', () => {
    const at = Date.UTC(2026, 11, 3, 6);
    const raw = taskModifiedRaw(98231, { lastModified: '2026-12-03T06:00:00', taskStage: { id: 4, name: 'Done' }, asset: { id: 7 } });
    const event = taskModifiedEvent(taskModifiedId(98231, at), raw, new Date(at + 5000));
    expect(event).toMatchObject({
      id: `task.modified-98231-${at}`,
      source: 'poll',
      name: 'task.modified',
      eventID: null,
      entity: { type: 'task', id: 98231 },
      taskID: 98231,
      taskStageID: 4,
      assetID: 7,
      occurredAt: '2026-12-03T06:00:00.000Z',
      receivedAt: new Date(at + 5000).toISOString(),
      data: { taskID: 98231, lastModified: '2026-12-03T06:00:00' },
    });
    const rebuild = eventRebuilder(createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10, strict: false }));
    const again = rebuild({ seq: 1, id: event.id, tenant: 'default', name: 'task.modified', receivedAt: at + 5000, raw });
    expect(again).toEqual(event);
    // A pushed event is rebuilt as pushed.
    expect(
      rebuild({ seq: 2, id: 'x', tenant: 'default', name: 'asset.created', receivedAt: at, raw: '{"EventID":40,"AssetID":1}' }).source,
    ).toBe('webhook');
  });

  it("is the router's name: a HubEx event coded TaskModified keeps event.<id>, and subscribing to it never warns", async () => {
    const catalogue = new EventCatalogue();
    const events = [
      { id: 77, code: 'TaskModified' },
      { id: 12, code: 'TaskCreated' },
    ];
    await loadCatalogue(catalogue, { common: { events: () => Promise.resolve(events) } }, createLogger('silent'));
    expect(catalogue.nameOf(77)).toBe('event.77');
    expect(catalogue.nameOf(12)).toBe('task.created');
    const handler = checkHandler(defineHandler({ name: 'h', on: ['task.modified', 'task.modifed'], handle() {} }), 'h.mjs');
    const registry = new HandlerRegistry([handler], catalogue);
    expect(registry.unknownSubscriptions()).toEqual([{ handler: 'h', name: 'task.modifed' }]);
    const polled = taskModifiedEvent(taskModifiedId(1, 0), taskModifiedRaw(1, {}), new Date());
    expect(registry.match(polled)).toEqual(['h']);
    expect(registry.match({ name: 'event.77', eventID: 77 })).toEqual([]);
  });
});
