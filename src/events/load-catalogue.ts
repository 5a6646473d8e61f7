// The installation's own event catalogue (GET /COMMON/Events: {id, code, name}), loaded at start
// so that handlers can subscribe to task events by name: HubEx publishes only the asset ids
// (40-44), and each installation may have its own. A code such as `TaskCreated` becomes the
// name `task.created` (`TaskStageChanged`: `task.stage_changed`); the names already known win.
import type { Logger } from 'pino';
import type { EventCatalogue } from './catalogue.js';
import { SYNTHESIZED_NAMES } from './synthesized.js';

export interface HubexEventSource {
  common: { events(o?: { signal?: AbortSignal }): Promise<readonly { id?: number; code?: string | null }[]> };
}

/** `TaskStageChanged` to `task.stage_changed`; undefined when the code has fewer than two words. */
export function nameFromCode(code: string): string | undefined {
  const words = code.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g)?.map((w) => w.toLowerCase());
  if (!words || words.length < 2) return undefined;
  return `${words[0]}.${words.slice(1).join('_')}`;
}

/** Registers what HubEx lists; never fails the start (a warning, and the names stay event.<id>). */
export async function loadCatalogue(catalogue: EventCatalogue, hubex: HubexEventSource, log: Logger, timeoutMs = 10_000): Promise<number> {
  try {
    const events = await hubex.common.events({ signal: AbortSignal.timeout(timeoutMs) });
    let added = 0;
    for (const e of events) {
      if (typeof e.id !== 'number' || !e.code || catalogue.get(e.id)) continue;
      const name = nameFromCode(e.code);
      // A name the router gives its own events (task.modified) stays theirs: that HubEx event keeps event.<id>.
      if (!name || catalogue.idOf(name) !== undefined || SYNTHESIZED_NAMES.has(name)) continue;
      try {
        catalogue.register({ id: e.id, name, code: e.code, entity: name.split('.')[0]! });
        added++;
      } catch (err) {
        log.warn({ id: e.id, code: e.code, err: { message: (err as Error).message } }, 'skipped an event from HubEx');
      }
    }
    log.info({ added, listed: events.length }, 'event catalogue loaded from HubEx');
    return added;
  } catch (err) {
    log.warn(
      { err: { message: (err as Error).message } },
      'could not load the event catalogue from HubEx; events without a known name are named event.<id>',
    );
    return 0;
  }
}
