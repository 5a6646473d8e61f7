// The handler registry: which handlers an event fans out to, by name, numeric id, or '*'.
// `where` is not run here: it runs at dispatch, where a throw counts as a failed attempt.
import type { EventCatalogue } from '../events/catalogue.js';
import type { HubexEvent } from '../events/event.js';
import { SYNTHESIZED_NAMES } from '../events/synthesized.js';
import type { Handler } from './define-handler.js';

export class HandlerRegistry {
  readonly #handlers = new Map<string, Handler>();

  constructor(
    handlers: Iterable<Handler>,
    private readonly catalogue: EventCatalogue,
  ) {
    for (const h of handlers) {
      if (this.#handlers.has(h.name)) throw new Error(`Two handlers are named "${h.name}"; handler names must be unique.`);
      this.#handlers.set(h.name, h);
    }
  }

  get(name: string): Handler | undefined {
    return this.#handlers.get(name);
  }

  get size(): number {
    return this.#handlers.size;
  }

  all(): Handler[] {
    return [...this.#handlers.values()];
  }

  names(): string[] {
    return [...this.#handlers.keys()];
  }

  /**
   * Subscriptions by a name that no event has: a typo, or a name of the installation's own
   * catalogue that has not loaded (no HubEx token, HubEx away). Such a subscription never matches
   * until the name becomes known. Numeric ids, '*', `event.<id>` and the router's own events
   * (`task.modified`) always resolve.
   */
  unknownSubscriptions(): { handler: string; name: string }[] {
    const out: { handler: string; name: string }[] = [];
    for (const h of this.#handlers.values()) {
      if (h.enabled === false) continue;
      for (const sel of h.on) {
        if (typeof sel === 'string' && sel !== '*' && !SYNTHESIZED_NAMES.has(sel) && this.catalogue.idOf(sel) === undefined)
          out.push({ handler: h.name, name: sel });
      }
    }
    return out;
  }

  /** Names of the handlers subscribed to this event (enabled ones only). */
  match(event: Pick<HubexEvent, 'name' | 'eventID'>): string[] {
    return this.matching(event).map((h) => h.name);
  }

  /** The handlers subscribed to this event (enabled ones only). */
  matching(event: Pick<HubexEvent, 'name' | 'eventID'>): Handler[] {
    const out: Handler[] = [];
    for (const h of this.#handlers.values()) if (h.enabled !== false && this.#matches(h, event)) out.push(h);
    return out;
  }

  #matches(h: Handler, event: Pick<HubexEvent, 'name' | 'eventID'>): boolean {
    for (const sel of h.on) {
      if (sel === '*') return true;
      if (typeof sel === 'number') {
        if (sel === event.eventID) return true;
      } else if (sel === event.name) {
        return true;
      } else if (event.eventID !== null && this.catalogue.idOf(sel) === event.eventID) {
        // 'event.12' still matches once the catalogue has named 12 'task.created', and the reverse.
        return true;
      }
    }
    return false;
  }
}
