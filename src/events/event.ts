// The normalised event: what the store keeps and what handlers receive as ctx.event.
export type { KnownEventName } from './catalogue.js';

export interface EntityRef {
  /** task, asset, company, location, ... (lower case). */
  readonly type: string;
  readonly id: number | string;
}

export interface HubexEvent {
  /** The dedup key: the payload's own unique id where it has one, else a hash of its canonical JSON. */
  readonly id: string;
  /** Where `id` came from: a unique-id field of the payload (or, for a polled event, the task and its change time), or the content hash. */
  readonly idSource: 'payload' | 'hash';
  /**
   * How it reached the router: pushed by HubEx to the webhook, or made by the router's polling
   * for a change no push covered (`task.modified`, src/sync/reconciler.ts).
   */
  readonly source: 'webhook' | 'poll';
  /** HubEx's numeric event id (40 = asset created, ...); null when the payload carried none. */
  readonly eventID: number | null;
  /** The catalogue name: `asset.created`, `event.<id>` when the id is not in the catalogue, `unknown` without an id. */
  readonly name: string;
  /** The entity the event is about, when one could be recognised. */
  readonly entity: EntityRef | null;
  readonly taskID?: number;
  readonly assetID?: number;
  readonly taskStageID?: number;
  readonly tenantID?: number;
  /** When HubEx says the event happened (ISO 8601), when the payload says so. */
  readonly occurredAt?: string;
  /** When this router received it (ISO 8601). */
  readonly receivedAt: string;
  /** Every top-level field, keys normalised to camelCase with an `ID` suffix; nested values as sent. */
  readonly data: Readonly<Record<string, unknown>>;
  /** The JSON text as received: the whole body for a single object, the element's JSON for an array item. */
  readonly raw: string;
}
