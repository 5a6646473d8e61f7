// Sample payloads for `hubex-router send <event>`, shaped like HubEx's webhook bodies, so that a
// handler can be tried without HubEx (as `stripe trigger` does for Stripe).
import { randomUUID } from 'node:crypto';

interface Ids {
  readonly asset?: number | undefined;
  readonly task?: number | undefined;
}

type Fixture = (ids: Ids) => Record<string, unknown>;

const asset =
  (eventID: number, eventName: string): Fixture =>
  ({ asset = 5501 }) => ({
    EventID: eventID,
    EventName: eventName,
    AssetID: asset,
    EventDate: new Date().toISOString(),
    CorrelationID: randomUUID(), // a new event each time, not a duplicate of the last one
  });

const task =
  (eventID: number, eventName: string): Fixture =>
  ({ task = 12, asset }) => ({
    EventID: eventID,
    EventName: eventName,
    TaskID: task,
    ...(asset === undefined ? {} : { AssetID: asset }),
    EventDate: new Date().toISOString(),
    CorrelationID: randomUUID(),
  });

export const FIXTURES: Readonly<Record<string, Fixture>> = {
  'asset.created': asset(40, 'AssetCreated'),
  'asset.updated': asset(41, 'AssetUpdated'),
  'asset.deleted': asset(42, 'AssetDeleted'),
  'asset.published': asset(43, 'AssetPublished'),
  'asset.unpublished': asset(44, 'AssetUnpublished'),
  // HubEx does not publish its task event ids; 12 is the example DESIGN.md uses. The router
  // names it event.12 unless the catalogue says otherwise.
  'task.created': task(12, 'TaskCreated'),
};

export function fixtureFor(name: string, ids: Ids): Record<string, unknown> {
  const make = FIXTURES[name];
  if (!make) throw new Error(`no sample for ${name}`);
  return make(ids);
}
