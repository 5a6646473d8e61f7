// The event a handler receives, rebuilt from what the store keeps (the JSON as received), with
// the id and name it was stored under (the name decided its routing, whatever the catalogue says now).
// An event the router made itself (task.modified) is rebuilt as it was made.
import type { StoredEvent } from '../store/contract.js';
import type { HubexEvent } from './event.js';
import type { Normalizer } from './normalize.js';
import { SYNTHESIZED_NAMES, taskModifiedEvent } from './synthesized.js';

export function eventRebuilder(normalize: Normalizer): (stored: StoredEvent) => HubexEvent {
  return (stored) => {
    if (SYNTHESIZED_NAMES.has(stored.name)) return taskModifiedEvent(stored.id, stored.raw, new Date(stored.receivedAt));
    const [event] = normalize(JSON.parse(stored.raw), stored.raw, new Date(stored.receivedAt));
    return { ...event!, id: stored.id, name: stored.name };
  };
}
