// The event catalogue: HubEx's numeric event ids and their stable dotted names.
// Starts with the published asset events; grows at start from HubEx (load-catalogue.ts) and at run time.

export interface CatalogueEntry {
  readonly id: number;
  /** Stable dotted name, e.g. `asset.created`. */
  readonly name: string;
  /** The entity type the event is about, when known. */
  readonly entity?: string;
  /** HubEx's code for the event, e.g. `AssetCreated`, when known. */
  readonly code?: string;
}

/** The events HubEx publishes (../shared/HUBEX.md); an installation's own come from HubEx at start. */
export const KNOWN_EVENTS = [
  { id: 40, name: 'asset.created', entity: 'asset' },
  { id: 41, name: 'asset.updated', entity: 'asset' },
  { id: 42, name: 'asset.deleted', entity: 'asset' },
  { id: 43, name: 'asset.published', entity: 'asset' },
  { id: 44, name: 'asset.unpublished', entity: 'asset' },
] as const satisfies readonly CatalogueEntry[];

/**
 * The names known before the catalogue loads, and `task.modified`, the event the router makes for
 * a change no push covered (src/events/synthesized.ts): what `on` autocompletes.
 */
export type KnownEventName = (typeof KNOWN_EVENTS)[number]['name'] | 'task.modified';

const NAME_RE = /^[a-z][a-z0-9]*(\.[a-z0-9_]+)+$/;

export class EventCatalogue {
  readonly #byId = new Map<number, CatalogueEntry>();
  readonly #byName = new Map<string, CatalogueEntry>();

  constructor(entries: Iterable<CatalogueEntry> = KNOWN_EVENTS) {
    for (const e of entries) this.register(e);
  }

  /** Adds or replaces an entry. A name may belong to one id only. */
  register(entry: CatalogueEntry): void {
    if (!Number.isSafeInteger(entry.id)) throw new TypeError(`event id must be an integer, got ${entry.id}`);
    if (!NAME_RE.test(entry.name)) throw new TypeError(`event name must be dotted lower case like asset.created, got "${entry.name}"`);
    const owner = this.#byName.get(entry.name);
    if (owner && owner.id !== entry.id) {
      throw new TypeError(`event name "${entry.name}" already belongs to event ${owner.id}`);
    }
    const previous = this.#byId.get(entry.id);
    if (previous) this.#byName.delete(previous.name);
    const frozen = Object.freeze({ ...entry });
    this.#byId.set(entry.id, frozen);
    this.#byName.set(entry.name, frozen);
  }

  /** The name for an id: the catalogue's, or `event.<id>`. */
  nameOf(id: number): string {
    return this.#byId.get(id)?.name ?? `event.${id}`;
  }

  get(id: number): CatalogueEntry | undefined {
    return this.#byId.get(id);
  }

  /** The id for a name (`asset.created` or `event.40`), if known. */
  idOf(name: string): number | undefined {
    const entry = this.#byName.get(name);
    if (entry) return entry.id;
    const m = /^event\.(\d+)$/.exec(name);
    return m ? Number(m[1]) : undefined;
  }

  list(): CatalogueEntry[] {
    return [...this.#byId.values()].sort((a, b) => a.id - b.id);
  }
}
