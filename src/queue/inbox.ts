// The inbox: where accepted events are made durable. The route talks only to this interface,
// so that the SQLite back end (one instance) and a Redis one (several) are interchangeable.
import type { HubexEvent } from '../events/event.js';

export interface AcceptedEvent {
  readonly id: string;
  readonly name: string;
  /** True when an event with this id was already stored; nothing new was written for it. */
  readonly duplicate: boolean;
}

export interface AcceptResult {
  readonly accepted: number;
  readonly duplicates: number;
  readonly events: readonly AcceptedEvent[];
}

export type Health = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface Inbox {
  /**
   * Stores the events durably and resolves only once they are committed.
   * Rejects with StoreUnavailableError when the store cannot take the write: then nothing
   * of this call was stored, and the caller must not acknowledge it.
   */
  accept(events: readonly HubexEvent[]): Promise<AcceptResult>;
  /** Whether the store takes writes right now (a real write, not a guess). Never rejects. */
  health(): Promise<Health>;
  /** Finishes pending writes and closes the store; later accepts reject. */
  close(): Promise<void>;
}
