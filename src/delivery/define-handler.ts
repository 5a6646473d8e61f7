// The handler API: a module's default export is defineHandler({...}).
import type { Logger } from 'pino';
import type { HubexEvent } from '../events/event.js';

/** What a handler subscribes to: event names ('asset.created'), numeric event ids (40), or '*'. */
export type EventSelector = string | number;

export interface HandlerContext<Hubex = unknown> {
  /** The stored event. Delivery is at least once: use event.id to be idempotent. */
  readonly event: HubexEvent;
  /** The shared, authenticated HubEx API client. */
  readonly hubex: Hubex;
  /** A child logger bound to this delivery (event id, delivery id, handler, attempt). */
  readonly log: Logger;
  /** Aborted on HANDLER_TIMEOUT_MS and on shutdown: pass it to every call that takes one. */
  readonly signal: AbortSignal;
  /** 1 on the first run, 2 on the first retry, ... */
  readonly attempt: number;
  readonly deliveryId: number | string;
}

export interface HandlerDefinition<Hubex = unknown> {
  /** Unique among loaded handlers; defaults to the module's file name. */
  readonly name?: string;
  /** Names, numeric event ids, or '*'. */
  readonly on: EventSelector | readonly EventSelector[];
  /** Runs at dispatch; false skips the event (the delivery is done). Throwing counts as a failed attempt. */
  readonly where?: (event: HubexEvent) => boolean | Promise<boolean>;
  readonly handle: (ctx: HandlerContext<Hubex>) => unknown | Promise<unknown>;
  /** False leaves the module loaded but subscribed to nothing (an example that needs configuring). */
  readonly enabled?: boolean;
}

export interface Handler extends HandlerDefinition {
  readonly name: string;
  readonly on: readonly EventSelector[];
}

const BRAND = Symbol.for('hubex-router.handler');

/** Declares a handler; the loader checks its shape and gives it its file name when it has none. */
export function defineHandler<Hubex = unknown>(definition: HandlerDefinition<Hubex>): HandlerDefinition<Hubex> {
  return Object.freeze({ ...definition, [BRAND]: true });
}

export const isDefinedHandler = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
