// Events the router makes itself: `task.modified`, for a change in HubEx that no pushed event
// covered (src/sync/reconciler.ts finds them by polling). The name is the router's: no HubEx
// event is ever given it (load-catalogue.ts skips a code that would map onto it).
import type { HubexEvent } from './event.js';
import { BUILTIN_NAMES } from './keys.js';
import { wellFormed } from './normalize.js';

export const TASK_MODIFIED = 'task.modified';

/** The names of the events the router makes: subscribing to one never warns, and no catalogue entry may take it. */
export const SYNTHESIZED_NAMES: ReadonlySet<string> = new Set([TASK_MODIFIED]);

/** The id of a polled change: the task and its modification time, so that seeing it again is a duplicate. */
export const taskModifiedId = (taskID: number, lastModifiedMs: number): string => `task.modified-${taskID}-${lastModifiedMs}`;

/** The most a polled task's JSON may take in the store (500 to a batch: 32 MB at most); a larger one keeps only its id and lastModified. */
export const MAX_POLLED_RAW = 64 * 1024;

/**
 * The raw JSON stored for a polled task: `taskID` and every field the list gave (its keys as HubEx
 * wrote them, but none onto a built-in name such as `constructor`).
 */
export function taskModifiedRaw(taskID: number, fields: Readonly<Record<string, unknown>>, maxBytes = MAX_POLLED_RAW): string {
  const data: Record<string, unknown> = { taskID };
  for (const [k, v] of Object.entries(fields)) if (k !== 'id' && k !== 'taskID' && !BUILTIN_NAMES.has(k)) data[k] = v;
  // Every string well formed (a lone surrogate becomes U+FFFD): Redis's cjson refuses one, escaped or not.
  const raw = JSON.stringify(wellFormed(data));
  if (Buffer.byteLength(raw) <= maxBytes) return raw;
  return JSON.stringify({ taskID, lastModified: fields.lastModified, truncated: true });
}

/** The `task.modified` event of a stored id, raw JSON and receive time: how it is made and how it is rebuilt. */
export function taskModifiedEvent(id: string, raw: string, receivedAt: Date): HubexEvent {
  const data = JSON.parse(raw) as Record<string, unknown>;
  const taskID = Number(data.taskID);
  const event: Record<string, unknown> = {
    id,
    idSource: 'payload',
    source: 'poll',
    eventID: null,
    name: TASK_MODIFIED,
    entity: { type: 'task', id: taskID },
    taskID,
  };
  const stage = idOf(data.taskStage);
  if (stage !== undefined) event.taskStageID = stage;
  const asset = idOf(data.asset);
  if (asset !== undefined) event.assetID = asset;
  if (typeof data.lastModified === 'string' && !Number.isNaN(Date.parse(data.lastModified))) {
    event.occurredAt = new Date(parseHubexTime(data.lastModified)).toISOString();
  }
  event.receivedAt = receivedAt.toISOString();
  event.data = data;
  event.raw = raw;
  return event as unknown as HubexEvent;
}

/**
 * A HubEx time (UTC ISO 8601) in ms since the epoch; one without a zone is UTC, as HubEx's
 * documents say. NaN when it is no time.
 */
export function parseHubexTime(text: string): number {
  const m = /^(\d{4}-\d\d-\d\d)(?:[Tt ](\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?))?\s*([Zz]|[+-]\d\d:?\d\d)?$/.exec(text.trim());
  if (!m) return Number.NaN;
  // Always an explicit zone: Date.parse reads a date and time without one in the machine's own zone.
  const zone = m[3] === undefined || /^z$/i.test(m[3]) ? 'Z' : m[3].length === 5 ? `${m[3].slice(0, 3)}:${m[3].slice(3)}` : m[3];
  return Date.parse(`${m[1]}T${(m[2] ?? '00:00:00').replace(',', '.')}${zone}`);
}

const idOf = (v: unknown): number | undefined => {
  const id = v !== null && typeof v === 'object' ? (v as { id?: unknown }).id : undefined;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : undefined;
};
