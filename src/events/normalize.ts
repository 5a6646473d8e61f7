// The normaliser: a parsed webhook body (one object or an array of them) to HubexEvents.
// HubEx's webhook body is not publicly documented (../shared/HUBEX.md), so this accepts any
// key casing, ids as numeric strings, and keeps every field it does not know.
import { HttpError } from '../errors.js';
import type { EventCatalogue } from './catalogue.js';
import { contentId } from './dedup-id.js';
import type { EntityRef, HubexEvent } from './event.js';
import { BUILTIN_NAMES, coerceId, isIdKey, normalizeKey } from './keys.js';

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
  'eventUID',
  'eventGUID',
  'eventUUID',
  'uid',
  'guid',
  'uuid',
  'notificationID',
  'webhookCallID',
];

const OCCURRED_FIELDS = ['occurredAt', 'occurred', 'eventDate', 'eventTime', 'timestamp'];

/** The longest top-level key, id (unique or entity) the router takes: HubEx's are far shorter. */
export const MAX_KEY_LENGTH = 256;
export const MAX_ID_LENGTH = 256;
/** The longest entity type (`EntityType`, `ObjectType`). */
export const MAX_TYPE_LENGTH = 64;

export interface NormalizeOptions {
  readonly catalogue: EventCatalogue;
  /** Most events one request may carry. */
  readonly maxBatch: number;
  /**
   * False for an event read back from the store: what intake refuses now (long keys and ids, a
   * key onto a built-in name) may have been stored by an older router, and must still run. Such
   * a key keeps its spelling as sent (and is left out when that spelling is itself a built-in).
   * Default true.
   */
  readonly strict?: boolean;
}

export type Normalizer = (body: unknown, rawText: string, receivedAt?: Date) => HubexEvent[];

export function createNormalizer({ catalogue, maxBatch, strict = true }: NormalizeOptions): Normalizer {
  return function normalize(body, rawText, receivedAt = new Date()) {
    const at = receivedAt.toISOString();
    // A string that is not well formed (a lone UTF-16 surrogate) can only come from a \u escape:
    // text decoded from UTF-8 holds none. Without an escape, no string needs the check.
    const escapes = rawText.includes('\\u');
    if (Array.isArray(body)) {
      if (body.length === 0) {
        throw new HttpError('NO_EVENT', 'The body is an empty array; it holds no event.');
      }
      if (body.length > maxBatch) {
        throw new HttpError('BATCH_TOO_LARGE', `The body holds ${body.length} events; at most ${maxBatch} are accepted in one request.`);
      }
      // JSON.stringify escapes a lone surrogate, so the item's raw stays valid JSON text.
      return body.map((item, i) => one(item, JSON.stringify(item), at, catalogue, `item ${i} of the array`, escapes, strict));
    }
    return [one(body, rawText, at, catalogue, 'the body', escapes, strict)];
  };
}

function one(
  value: unknown,
  raw: string,
  receivedAt: string,
  catalogue: EventCatalogue,
  where: string,
  escapes: boolean,
  strict: boolean,
): HubexEvent {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(
      'INVALID_SHAPE',
      `${capitalise(where)} is ${describe(value)}; HubEx events are JSON objects such as {"EventID": 40, "AssetID": 5501}.`,
    );
  }
  const data: Record<string, unknown> = {};
  for (const [sent, sentValue] of Object.entries(value)) {
    if (sent.length > MAX_KEY_LENGTH && strict) {
      throw new HttpError(
        'FIELD_TOO_LONG',
        `${capitalise(where)} has a key of ${sent.length} characters; keys are at most ${MAX_KEY_LENGTH}.`,
      );
    }
    const key = escapes ? sent.toWellFormed() : sent;
    const v = escapes ? wellFormed(sentValue) : sentValue;
    let k = sent.length > MAX_KEY_LENGTH ? key : normalizeKey(key); // only short keys are cached
    if (BUILTIN_NAMES.has(k)) {
      if (strict) {
        throw new HttpError(
          'FORBIDDEN_KEY',
          `${capitalise(where)} has the key ${JSON.stringify(key.slice(0, 100))}, which would hide the built-in ${k} of the event's data; it is refused.`,
        );
      }
      if (BUILTIN_NAMES.has(key)) continue;
      k = key;
    }
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
  const uniqueId = uniqueField ? String(data[uniqueField]) : undefined;
  if (strict) {
    if (uniqueId !== undefined) checkLength(uniqueId, MAX_ID_LENGTH, uniqueField!, where);
    if (entity) {
      checkLength(entity.type, MAX_TYPE_LENGTH, 'entity type', where); // first: the next message names it
      checkLength(String(entity.id), MAX_ID_LENGTH, `${entity.type}'s id`, where);
    }
  }
  const event: Record<string, unknown> = {
    id: uniqueId ?? contentId(value),
    idSource: uniqueField ? 'payload' : 'hash',
    source: 'webhook',
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
  for (const [typeField, idField] of [
    ['entityType', 'entityID'],
    ['objectType', 'objectID'],
  ] as const) {
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

function checkLength(text: string, max: number, field: string, where: string): void {
  if (text.length > max) {
    throw new HttpError('FIELD_TOO_LONG', `The ${field} of ${where} is ${text.length} characters long; at most ${max} are accepted.`);
  }
}

/** The value with every string in it (keys too) well formed: lone surrogates become U+FFFD. Copies only what changes. */
export function wellFormed(v: unknown): unknown {
  if (typeof v === 'string') return v.isWellFormed() ? v : v.toWellFormed();
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    v.forEach((item, i) => {
      const w = wellFormed(item);
      if (w !== item) (copy ??= [...v])[i] = w;
    });
    return copy ?? v;
  }
  let changed = false;
  const entries = Object.entries(v).map(([k, item]) => {
    const wk = k.isWellFormed() ? k : k.toWellFormed();
    const w = wellFormed(item);
    if (wk !== k || w !== item) changed = true;
    return [wk, w] as const;
  });
  return changed ? Object.fromEntries(entries) : v;
}

const isIdValue = (v: unknown): boolean => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && v.trim() !== '');

const capitalise = (s: string) => s[0]!.toUpperCase() + s.slice(1);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return `a ${typeof v}`;
}
