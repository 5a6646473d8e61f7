// The normaliser: a parsed webhook body (one object or an array of them) to HubexEvents.
// HubEx's webhook body is not publicly documented (../shared/HUBEX.md), so this accepts any
// key casing, ids as numeric strings, and keeps every field it does not know.
import { HttpError } from '../errors.js';
import type { EventCatalogue } from './catalogue.js';
import { contentId } from './dedup-id.js';
import type { EntityRef, HubexEvent } from './event.js';
import { coerceId, isIdKey, normalizeKey } from './keys.js';

/** Fields (after normalisation) that name the entity of an event, in order of preference. */
export const ENTITY_FIELDS: readonly (readonly [type: string, field: string])[] = [
  ['task', 'taskID'],
  ['asset', 'assetID'],
  ['company', 'companyID'],
  ['location', 'locationID'],
  ['contact', 'contactID'],
  ['equipment', 'equipmentID'],
  ['employee', 'employeeID'],
  ['user', 'userID'],
];

/** Fields that hold a unique id of the notification itself (not of its entity): the dedup key. */
export const UNIQUE_ID_FIELDS: readonly string[] = [
  'eventUID', 'eventGUID', 'eventUUID', 'uid', 'guid', 'uuid', 'notificationID', 'webhookCallID',
];

const OCCURRED_FIELDS = ['occurredAt', 'occurred', 'eventDate', 'eventTime', 'timestamp'];

export interface NormalizeOptions {
  readonly catalogue: EventCatalogue;
  /** Most events one request may carry. */
  readonly maxBatch: number;
}

export type Normalizer = (body: unknown, rawText: string, receivedAt?: Date) => HubexEvent[];

export function createNormalizer({ catalogue, maxBatch }: NormalizeOptions): Normalizer {
  return function normalize(body, rawText, receivedAt = new Date()) {
    const at = receivedAt.toISOString();
    if (Array.isArray(body)) {
      if (body.length === 0) {
        throw new HttpError('NO_EVENT', 'The body is an empty array; it holds no event.');
      }
      if (body.length > maxBatch) {
        throw new HttpError(
          'BATCH_TOO_LARGE',
          `The body holds ${body.length} events; at most ${maxBatch} are accepted in one request.`,
        );
      }
      return body.map((item, i) => one(item, JSON.stringify(item), at, catalogue, `item ${i} of the array`));
    }
    return [one(body, rawText, at, catalogue, 'the body')];
  };
}

function one(value: unknown, raw: string, receivedAt: string, catalogue: EventCatalogue, where: string): HubexEvent {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(
      'INVALID_SHAPE',
      `${capitalise(where)} is ${describe(value)}; HubEx events are JSON objects such as {"EventID": 40, "AssetID": 5501}.`,
    );
  }
  const data: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const k = normalizeKey(key);
    // Two spellings of one key (EventID and event_id): the first wins, the other keeps its own.
    const target = Object.hasOwn(data, k) ? key : k;
    data[target] = isIdKey(k) ? coerceId(v) : v;
  }

  const eventID = eventIdOf(data, catalogue);
  const entity = entityOf(data, eventID === null ? undefined : catalogue.get(eventID)?.entity);
  if (eventID === null && entity === null) {
    throw new HttpError(
      'NO_EVENT',
      `${capitalise(where)} has no event id (EventID) and no entity id (TaskID, AssetID, CompanyID, ...), so it is not a HubEx event.`,
    );
  }

  const uniqueField = UNIQUE_ID_FIELDS.find((f) => isIdValue(data[f]));
  const event: Record<string, unknown> = {
    id: uniqueField ? String(data[uniqueField]) : contentId(value),
    idSource: uniqueField ? 'payload' : 'hash',
    eventID,
    name: eventID === null ? 'unknown' : catalogue.nameOf(eventID),
    entity,
  };
  for (const f of ['taskID', 'assetID', 'taskStageID', 'tenantID'] as const) {
    const v = data[f];
    if (typeof v === 'number' && Number.isSafeInteger(v)) event[f] = v;
  }
  const occurredAt = occurredAtOf(data);
  if (occurredAt) event.occurredAt = occurredAt;
  event.receivedAt = receivedAt;
  event.data = data;
  event.raw = raw;
  return event as unknown as HubexEvent;
}

function eventIdOf(data: Record<string, unknown>, catalogue: EventCatalogue): number | null {
  const v = data.eventID;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  // A name in place of the id ("asset.created"), should a payload carry one.
  for (const f of ['eventID', 'eventName', 'event']) {
    const s = data[f];
    if (typeof s === 'string') {
      const id = catalogue.idOf(s);
      if (id !== undefined) return id;
    }
  }
  return null;
}

function entityOf(data: Record<string, unknown>, preferred: string | undefined): EntityRef | null {
  if (preferred) {
    const field = ENTITY_FIELDS.find(([type]) => type === preferred)?.[1] ?? `${preferred}ID`;
    if (isIdValue(data[field])) return { type: preferred, id: data[field] as number | string };
  }
  for (const [type, field] of ENTITY_FIELDS) {
    if (isIdValue(data[field])) return { type, id: data[field] as number | string };
  }
  // A generic pair, e.g. {"EntityType": "Task", "EntityID": 5}.
  for (const [typeField, idField] of [['entityType', 'entityID'], ['objectType', 'objectID']] as const) {
    const type = data[typeField];
    if (typeof type === 'string' && type.trim() && isIdValue(data[idField])) {
      return { type: type.trim().toLowerCase(), id: data[idField] as number | string };
    }
  }
  return null;
}

function occurredAtOf(data: Record<string, unknown>): string | undefined {
  for (const f of OCCURRED_FIELDS) {
    const v = data[f];
    if (typeof v === 'string' || typeof v === 'number') {
      const t = new Date(v);
      if (!Number.isNaN(t.getTime())) return t.toISOString();
    }
  }
  return undefined;
}

const isIdValue = (v: unknown): boolean =>
  (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && v.trim() !== '');

const capitalise = (s: string) => s[0]!.toUpperCase() + s.slice(1);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return `a ${typeof v}`;
}
