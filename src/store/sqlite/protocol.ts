// Messages between the store's proxy (./store.ts) and its thread (./thread.ts).
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AcceptResult } from '../contract.js';
import type { EventInput } from './writer.js';

export type Op =
  | 'accept'
  | 'claim'
  | 'settle'
  | 'extend'
  | 'release'
  | 'replay'
  | 'probe'
  | 'list'
  | 'show'
  | 'counts'
  | 'backlog'
  | 'listEvents'
  | 'showEvent'
  | 'prune'
  | 'stats'
  | 'readCursor'
  | 'writeCursor'
  | 'lease'
  | 'releaseLease'
  | 'lastPushedTasks'
  | 'searchEvents';

export interface Call {
  readonly id: number;
  readonly op: Op;
  readonly args: readonly any[];
  /** The caller's clock, so that tests can move time. */
  readonly now: number;
}

export interface WireError {
  readonly message: string;
  readonly name: string;
  /** The store cannot take writes (the route answers 503). */
  readonly unavailable: boolean;
}

export type Reply = { readonly id: number; readonly value?: unknown; readonly error?: WireError };

export type WorkerMessage =
  | { readonly replies: readonly Reply[] }
  | { readonly log: { level: 'info' | 'warn' | 'error'; msg: string; detail?: Record<string, unknown> } }
  | { readonly closed: true };

// An accept travels as arrays, not objects: the structured clone writes and reads every key of an
// object again for each event (its name strings, then their lookup on the other side), and the
// accept is the one call made for every request.

/** An EventInput in the order of its fields. */
export type WireEvent = readonly [
  key: string,
  tenant: string,
  idSource: EventInput['idSource'],
  eventID: number | null,
  name: string,
  entityType: string | null,
  entityId: string | null,
  raw: string,
  handlers: readonly string[],
  /** The flows of some of its deliveries, when any. */
  flows?: readonly WireFlow[],
];

/** A delivery's flow: its handler, its kind, its key (scoped by tenant), and a debounce's times. */
export type WireFlow = readonly [handler: string, kind: 'order' | 'debounce', key: string, periodMs: number, maxWaitMs: number];

export const fromWireEvent = (w: WireEvent): EventInput => ({
  key: w[0],
  tenant: w[1],
  idSource: w[2],
  eventID: w[3],
  name: w[4],
  entityType: w[5],
  entityId: w[6],
  raw: w[7],
  handlers: w[8],
  ...(w[9] ? { flows: w[9] } : {}),
});

/** An AcceptResult: the stored id and a duplicate flag per event, in the order sent (the names are the caller's). */
export type WireAccepted = readonly (string | boolean)[];

export function toWireAccepted(r: AcceptResult): WireAccepted {
  const out: (string | boolean)[] = [];
  for (const e of r.events) out.push(e.id, e.duplicate);
  return out;
}

export function fromWireAccepted(w: WireAccepted, names: readonly string[]): AcceptResult {
  const events = names.map((name, i) => ({ id: w[2 * i] as string, name, duplicate: w[2 * i + 1] as boolean }));
  const accepted = events.reduce((n, e) => (e.duplicate ? n : n + 1), 0);
  return { accepted, duplicates: events.length - accepted, events };
}
