// Events as the route hands them to the store: with their tenant and the handlers they fan out to.
import type { HubexEvent } from '../../src/events/event.js';
import { DEFAULT_TENANT, type IncomingEvent } from '../../src/store/contract.js';

export function incoming(
  events: readonly HubexEvent[],
  handlers: readonly string[] | ((event: HubexEvent) => readonly string[]) = [],
): IncomingEvent[] {
  return events.map((event) => ({ event, tenant: DEFAULT_TENANT, handlers: typeof handlers === 'function' ? handlers(event) : handlers }));
}
