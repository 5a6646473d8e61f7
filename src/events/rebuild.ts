// The event a handler receives, rebuilt from what the store keeps (the JSON as received), with
// the id and name it was stored under (the name decided its routing, whatever the catalogue says now).
import type { StoredEvent } from '../store/contract.js';
import type { HubexEvent } from './event.js';
import type { Normalizer } from './normalize.js';

export function eventRebuilder(normalize: Normalizer): (stored: StoredEvent) => HubexEvent {
  return (stored) => {
    const [event] = normalize(JSON.parse(stored.raw), stored.raw, new Date(stored.receivedAt));
    return { ...event!, id: stored.id, name: stored.name };
  };
}
