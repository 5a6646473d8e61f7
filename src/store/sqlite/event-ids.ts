// The dedup index of the SQLite store. A unique index on events.id would cost a random B-tree page
// in the WAL for every event, so ids live in two places: event_ids (merged in bulk, in sorted
// slices, at moments ./merge-pacer.ts chooses), and, for the events accepted since the last merge,
// this object's memory (read back from the events table at open). `maxSeq` and the ids added by
// the transaction under way are kept here too, so that a rollback can undo them.
import type { MergeState } from './merge-pacer.js';
import type { IdRow, KnownId, Statements } from './sql.js';

type IdEntry = readonly [id: string, seq: number];
const REPEAT_SUFFIX = /^[1-9]\d*$/;
const byId = (a: IdEntry, b: IdEntry) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

export interface EventIdsOptions {
  /** How many ids waiting in memory start a merge into event_ids. Default 50,000. */
  readonly mergeAt?: number;
  /** How many ids one slice of a merge writes. Default 250. */
  readonly slice?: number;
}

/** The next slice of a merge: write `entries` (and, when `last`, the mark `through`) in one transaction, then call done(). */
export interface MergeSlice {
  readonly entries: readonly IdEntry[];
  readonly last: boolean;
  readonly through: number;
  done(): void;
}

export class EventIds {
  readonly mergeAt: number;
  readonly slice: number;
  // Ids of events above ids_indexed_through: not yet findable in event_ids.
  readonly #recent = new Map<string, KnownId>();
  // The same ids, to be written to event_ids, grouped by their first two characters: a merge takes
  // the groups in key order, so each slice is a run of neighbouring keys without a sort of them all.
  #unmerged = new Map<string, IdEntry[]>();
  #unmergedCount = 0;
  #merge:
    | {
        readonly groups: ReadonlyMap<string, IdEntry[]>;
        readonly order: readonly string[];
        group: number;
        offset: number;
        readonly through: number;
      }
    | undefined;
  /** Repeat ids ('<key>.<n>') held in #recent, by key: the repeats not yet in event_ids. */
  #recentRepeats = new Map<string, string[]>();
  /** Ids put in #recent by the transaction under way: forgotten again if it rolls back. */
  #added: string[] = [];
  /** The highest seq this connection knows of; another process (the CLI) may have stored more. */
  maxSeq = 0;

  constructor(o: EventIdsOptions = {}) {
    this.mergeAt = o.mergeAt ?? 50_000;
    this.slice = o.slice ?? 250;
  }

  /** Reads back the ids above the mark (inside a read transaction: a router may write meanwhile). */
  load(s: Statements): void {
    this.#recent.clear();
    this.#recentRepeats = new Map();
    this.#unmerged = new Map();
    this.#unmergedCount = 0;
    this.#merge = undefined;
    const through = Number(s.getMeta.get('ids_indexed_through')?.value ?? 0);
    for (const r of s.idsAbove.iterate(through)) this.#remember(r.id, { seq: r.seq, id_source: r.id_source, received_at: r.received_at });
    this.maxSeq = Math.max(through, s.maxSeq.get()?.seq ?? 0);
  }

  /**
   * Whether ids wait to be merged: 'due' when a merge is under way or mergeAt ids wait, 'behind'
   * when four times that many wait (memory: the thread then merges even under full load).
   */
  get mergeState(): MergeState {
    if (this.#recent.size >= 4 * this.mergeAt) return 'behind'; // all that memory holds: a merge under way included
    return this.#merge || this.#unmergedCount >= this.mergeAt ? 'due' : 'idle';
  }

  /** The stored event that has this id, if any: the ids in memory, then event_ids. */
  find(s: Statements, id: string): KnownId | undefined {
    return this.#recent.get(id) ?? s.byIndexedId.get(id);
  }

  /** The stored repeats '<key>.<n>' of a key: those in event_ids, and those in memory. */
  repeatsOf(s: Statements, key: string): (KnownId & { id: string; n: number })[] {
    const out: (KnownId & { id: string; n: number })[] = [];
    const add = (id: string, k: KnownId) => {
      const suffix = id.slice(key.length + 1);
      if (REPEAT_SUFFIX.test(suffix)) out.push({ ...k, id, n: Number(suffix) });
    };
    for (const r of s.repeatsIndexed.all(`${key}.`, `${key}/`) as IdRow[]) add(r.id, r);
    const listed = this.#recentRepeats.get(key);
    if (listed) {
      const live = listed.filter((id) => this.#recent.has(id));
      if (live.length > 0) this.#recentRepeats.set(key, live);
      else this.#recentRepeats.delete(key);
      for (const id of live) add(id, this.#recent.get(id)!);
    }
    return out;
  }

  /** An event stored by the transaction under way. */
  add(id: string, known: KnownId): void {
    this.#remember(id, known);
    this.#added.push(id);
    this.maxSeq = known.seq;
  }

  /** Where the transaction (or the item of one) under way starts: rollBack(mark) undoes what came after. */
  mark(): { readonly added: number; readonly maxSeq: number } {
    return { added: this.#added.length, maxSeq: this.maxSeq };
  }

  /** The seqs are given again too (AUTOINCREMENT rolls back with the transaction). */
  rollBack(mark: { readonly added: number; readonly maxSeq: number }): void {
    for (const id of this.#added.splice(mark.added)) this.#recent.delete(id); // their #unmerged entries are passed over by the merge
    this.maxSeq = mark.maxSeq;
  }

  /** A transaction begins or ends: what it added is kept. */
  settle(): void {
    this.#added = [];
  }

  /** A pruned event: no longer found. */
  forget(id: string, seq: number): void {
    if (this.#recent.get(id)?.seq === seq) this.#recent.delete(id);
  }

  /**
   * The next slice of the merge into event_ids, in key order: neighbouring keys share leaf pages
   * that as many single inserts would each write to the WAL. Starts a merge when mergeAt ids wait;
   * undefined when nothing waits. Its state moves on only at done(), after the slice's commit, so a
   * slice that failed is tried again.
   */
  nextSlice(): MergeSlice | undefined {
    if (!this.#merge) {
      if (this.mergeState === 'idle') return undefined;
      const groups = this.#unmerged;
      this.#merge = { groups, order: [...groups.keys()].sort(), group: 0, offset: 0, through: this.maxSeq };
      this.#unmerged = new Map();
      this.#unmergedCount = 0;
    }
    const m = this.#merge;
    // Whole groups while they fit, or a part of one larger than a slice (ids that share their
    // first characters, such as sequential numbers), sorted once.
    const taken: IdEntry[] = [];
    let { group, offset } = m;
    while (group < m.order.length && taken.length < this.slice) {
      const entries = m.groups.get(m.order[group]!)!;
      if (offset === 0 && entries.length > this.slice) entries.sort(byId);
      const end = Math.min(entries.length, offset + this.slice - taken.length);
      for (let k = offset; k < end; k++) taken.push(entries[k]!);
      if (end < entries.length) offset = end;
      else {
        group++;
        offset = 0;
      }
    }
    // An id rolled back or pruned since is no longer in #recent with that seq: not written.
    const entries = taken.filter((e) => this.#recent.get(e[0])?.seq === e[1]).sort(byId);
    const last = group >= m.order.length;
    return {
      entries,
      last,
      through: m.through,
      done: () => {
        m.group = group;
        m.offset = offset;
        for (const [id] of entries) this.#recent.delete(id); // found in event_ids from now on
        if (last) this.#merge = undefined;
      },
    };
  }

  #remember(id: string, known: KnownId): void {
    this.#recent.set(id, known);
    const dot = id.lastIndexOf('.');
    if (dot > 0 && REPEAT_SUFFIX.test(id.slice(dot + 1))) {
      const key = id.slice(0, dot);
      const list = this.#recentRepeats.get(key);
      if (list) list.push(id);
      else this.#recentRepeats.set(key, [id]);
    }
    const prefix = id.slice(0, 2);
    const group = this.#unmerged.get(prefix);
    if (group) group.push([id, known.seq]);
    else this.#unmerged.set(prefix, [[id, known.seq]]);
    this.#unmergedCount++;
  }
}
