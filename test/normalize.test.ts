// The normaliser: key casings, arrays, numeric strings, unknown fields and ids, entities, names.
import { describe, expect, it } from 'vitest';
import { HttpError } from '../src/errors.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { normalizeKey } from '../src/events/keys.js';

const make = (maxBatch = 1000, catalogue = new EventCatalogue()) => createNormalizer({ catalogue, maxBatch });
const norm = (body: unknown, n = make()) => n(body, JSON.stringify(body), new Date('2026-11-28T10:00:00Z'));
const one = (body: unknown, n = make()) => norm(body, n)[0]!;
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof HttpError ? `${err.statusCode} ${err.code}` : String(err);
  }
  return 'no error';
};

describe('normalizeKey', () => {
  it.each([
    ['EventID', 'eventID'],
    ['eventId', 'eventID'],
    ['eventID', 'eventID'],
    ['event_id', 'eventID'],
    ['EVENT_ID', 'eventID'],
    ['TaskStageID', 'taskStageID'],
    ['task_stage_id', 'taskStageID'],
    ['occurred_at', 'occurredAt'],
    ['Name', 'name'],
    ['ID', 'id'],
    ['EventUID', 'eventUID'],
  ])('%s -> %s', (key, expected) => expect(normalizeKey(key)).toBe(expected));
});

describe('normalize', () => {
  it.each(['EventID', 'eventId', 'eventID', 'event_id'])('reads the event id from %s', (key) => {
    const e = one({ [key]: 40, AssetID: 5501 });
    expect(e.eventID).toBe(40);
    expect(e.name).toBe('asset.created');
    expect(e.data.eventID).toBe(40);
  });

  it('reads ids that arrive as numeric strings', () => {
    const e = one({ eventID: '12', taskID: '98231', taskStageID: ' 4 ', TenantID: '77' });
    expect(e).toMatchObject({ eventID: 12, taskID: 98231, taskStageID: 4, tenantID: 77 });
    expect(e.entity).toEqual({ type: 'task', id: 98231 });
  });

  it('keeps every unknown field in data, camelCased, nested values as sent', () => {
    const e = one({ EventID: 41, AssetID: 5501, Some_Field: 'x', Extra: { Inner_Key: [1, 2] }, Flag: true });
    expect(e.data).toEqual({
      eventID: 41,
      assetID: 5501,
      someField: 'x',
      extra: { Inner_Key: [1, 2] },
      flag: true,
    });
  });

  it('keeps the body verbatim in raw', () => {
    const text = '{ "EventID" : 40,\n  "AssetID": "5501" }';
    const [e] = make()(JSON.parse(text), text);
    expect(e!.raw).toBe(text);
  });

  it('accepts an event id it has never seen, named event.<id>', () => {
    const e = one({ EventID: 977, TaskID: 5 });
    expect(e.eventID).toBe(977);
    expect(e.name).toBe('event.977');
  });

  it('uses names registered in the catalogue at run time', () => {
    const catalogue = new EventCatalogue();
    const n = make(1000, catalogue);
    expect(one({ EventID: 12, TaskID: 1 }, n).name).toBe('event.12');
    catalogue.register({ id: 12, name: 'task.created', entity: 'task', code: 'TaskCreated' });
    expect(one({ EventID: 12, TaskID: 1 }, n).name).toBe('task.created');
  });

  it('accepts an object with an entity id but no event id, named unknown', () => {
    const e = one({ TaskID: 98231, Comment: 'hi' });
    expect(e).toMatchObject({ eventID: null, name: 'unknown', entity: { type: 'task', id: 98231 } });
  });

  it.each([
    [
      { EventID: 40, AssetID: 5 },
      { type: 'asset', id: 5 },
    ],
    [
      { EventID: 12, TaskID: 9, AssetID: 5 },
      { type: 'task', id: 9 },
    ],
    [
      { EventID: 41, TaskID: 9, AssetID: 5 },
      { type: 'asset', id: 5 },
    ], // asset events are about the asset
    [
      { EventID: 70, CompanyID: 3 },
      { type: 'company', id: 3 },
    ],
    [
      { EventID: 71, location_id: '8' },
      { type: 'location', id: 8 },
    ],
    [
      { EventID: 72, EntityType: 'Contract', EntityID: 44 },
      { type: 'contract', id: 44 },
    ],
    [{ EventID: 73 }, null],
  ])('detects the entity of %j', (body, entity) => {
    expect(one(body).entity).toEqual(entity);
  });

  it('reads occurredAt from common date fields', () => {
    expect(one({ eventID: 12, taskID: 1, occurred: '2026-11-28T09:15:00Z' }).occurredAt).toBe('2026-11-28T09:15:00.000Z');
    expect(one({ eventID: 12, taskID: 1, occurred: 'yesterday' }).occurredAt).toBeUndefined();
    expect(one({ eventID: 12, taskID: 1 }).receivedAt).toBe('2026-11-28T10:00:00.000Z');
  });

  it('takes the array form, one event per item, each with its own raw', () => {
    const events = norm([
      { EventID: 41, AssetID: 5501 },
      { EventID: 41, AssetID: 5502 },
    ]);
    expect(events.map((e) => e.assetID)).toEqual([5501, 5502]);
    expect(events.map((e) => JSON.parse(e.raw))).toEqual([
      { EventID: 41, AssetID: 5501 },
      { EventID: 41, AssetID: 5502 },
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
  });

  it('refuses an array larger than the batch cap, and an empty one', () => {
    const n = make(3);
    expect(
      norm(
        Array.from({ length: 3 }, (_, i) => ({ EventID: 41, AssetID: i })),
        n,
      ),
    ).toHaveLength(3);
    expect(
      codeOf(() =>
        norm(
          Array.from({ length: 4 }, (_, i) => ({ EventID: 41, AssetID: i })),
          n,
        ),
      ),
    ).toBe('400 BATCH_TOO_LARGE');
    expect(codeOf(() => norm([]))).toBe('400 NO_EVENT');
  });

  it('refuses a body with neither an event id nor an entity id, naming the array item', () => {
    expect(codeOf(() => norm({ hello: 1 }))).toBe('400 NO_EVENT');
    expect(() => norm([{ EventID: 40, AssetID: 1 }, { nothing: true }])).toThrow(/^Item 1 of the array has no event id/);
    expect(codeOf(() => norm([{ EventID: 40, AssetID: 1 }, 'x']))).toBe('400 INVALID_SHAPE');
  });

  it('uses the payload unique id as the event id where there is one, else a content hash', () => {
    expect(one({ EventID: 40, AssetID: 1, EventUID: 'b9c2-77' })).toMatchObject({ id: 'b9c2-77', idSource: 'payload' });
    const a = one({ EventID: 40, AssetID: 1, TenantID: 2 });
    const b = one({ TenantID: 2, AssetID: 1, EventID: 40 });
    expect(a.idSource).toBe('hash');
    expect(a.id).toBe(b.id); // key order does not matter
    expect(one({ EventID: 40, AssetID: 2, TenantID: 2 }).id).not.toBe(a.id);
  });

  it('takes keys and ids up to their bounds (256 characters; 64 for an entity type)', () => {
    const e = one({ EventID: 40, AssetID: 1, EventUID: 'u'.repeat(256), ['k'.repeat(256)]: 1 });
    expect(e.id).toBe('u'.repeat(256));
    expect(one({ EntityType: 'T'.repeat(64), EntityID: 'e'.repeat(256) }).entity).toEqual({ type: 't'.repeat(64), id: 'e'.repeat(256) });
    expect(codeOf(() => one({ EventID: 40, AssetID: 1, EventUID: 'u'.repeat(257) }))).toBe('400 FIELD_TOO_LONG');
    expect(codeOf(() => one({ EventID: 40, TaskID: 'x'.repeat(257) }))).toBe('400 FIELD_TOO_LONG');
    expect(codeOf(() => one({ EntityType: 'T'.repeat(65), EntityID: 1 }))).toBe('400 FIELD_TOO_LONG');
  });

  it('refuses a key that normalises onto a built-in name, and keeps one that only starts like it', () => {
    for (const key of ['Constructor', 'ToString', 'Has_Own_Property', 'VALUE_OF', 'isPrototypeOf']) {
      expect(
        codeOf(() => one({ EventID: 40, AssetID: 1, [key]: 1 })),
        key,
      ).toBe('400 FORBIDDEN_KEY');
    }
    const e = one({ EventID: 40, AssetID: 1, ToStringValue: 1, Constructor_Name: 'x' });
    expect(e.data).toMatchObject({ toStringValue: 1, constructorName: 'x' });
    expect(String(e.data)).toBe('[object Object]');
    expect(Object.prototype.hasOwnProperty.call(e.data, 'toString')).toBe(false);
  });

  it('makes every string well formed: a lone surrogate (from a \\u escape) becomes U+FFFD, keys, values and nested ones', () => {
    const text =
      '{"EventID": 40, "EntityType": "Ta\\ud800sk", "EntityID": "5\\udc00", "K\\udbff": {"in\\ud800": ["\\udfff"]}, "Ok": "\\ud83d\\ude00"}';
    const [e] = make()(JSON.parse(text), text);
    expect(e!.entity).toEqual({ type: 'ta\ufffdsk', id: '5\ufffd' });
    expect(e!.data).toMatchObject({ k: { 'in\ufffd': ['\ufffd'] }, ok: '😀' }); // a top-level key keeps its words only
    const { raw: _raw, ...parsed } = e!;
    const strings = JSON.stringify(parsed).match(/\\u[dD][89abAB]/g);
    expect(strings).toBeNull(); // nothing left for a strict decoder (Redis's cjson) to refuse
    expect(e!.raw).toBe(text); // the body as received
  });
});
