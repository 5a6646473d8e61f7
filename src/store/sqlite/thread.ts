// The store's thread: owns the SQLite connection. The calls that arrive during one turn of
// this thread's event loop are committed in one transaction (group commit), then all answered.
import { parentPort, workerData } from 'node:worker_threads';
import { MergePacer } from './merge-pacer.js';
import { type Call, fromWireEvent, type Reply, toWireAccepted, type WireError, type WireEvent } from './protocol.js';
import { StoreUnavailableError } from '../../errors.js';
import { isIoError, SqliteWriter, type WriterOptions } from './writer.js';

const port = parentPort!;
const writer = new SqliteWriter({
  ...(workerData as Omit<WriterOptions, 'log'>),
  log: (level, msg, detail) => port.postMessage({ log: { level, msg, detail } }),
});

const WRITES = new Set<Call['op']>(['accept', 'claim', 'settle', 'extend', 'release', 'replay', 'writeCursor', 'lease', 'releaseLease']);
let queue: Call[] = [];
let scheduled = false;
let closing = false;

port.on('message', (msg: { calls: Call[] } | 'close') => {
  if (msg === 'close') {
    closing = true;
    flush();
    void writer.close().then(() => port.postMessage({ closed: true, stats: writer.stats }));
    return;
  }
  if (closing) {
    reply(
      msg.calls.map((c) => ({ id: c.id, error: wireError(new StoreUnavailableError('The store is closed: the router is stopping.')) })),
    );
    return;
  }
  queue.push(...msg.calls);
  if (!scheduled) {
    scheduled = true;
    // After the poll phase: every call that reached this thread meanwhile joins the transaction.
    setImmediate(flush);
  }
});

function flush(): void {
  scheduled = false;
  const calls = queue;
  queue = [];
  if (calls.length === 0) return;
  const writes = calls.filter((c) => WRITES.has(c.op));
  const out: Reply[] = [];
  if (writes.length > 0) {
    try {
      const results = writer.transaction(writes.at(-1)!.now, writes, write);
      results.forEach((r, i) => out.push(r.ok ? { id: writes[i]!.id, value: r.value } : { id: writes[i]!.id, error: wireError(r.error) }));
    } catch (err) {
      for (const c of writes) out.push({ id: c.id, error: wireError(err) });
    }
  }
  for (const c of calls) {
    if (WRITES.has(c.op)) continue;
    try {
      out.push({ id: c.id, value: read(c) });
    } catch (err) {
      out.push({ id: c.id, error: wireError(isIoError(err) ? writer.fail(err) : err) });
    }
  }
  reply(out);
  if (writes.length > 0) {
    lastNow = writes.at(-1)!.now;
    let events = 0;
    let accepts = 0;
    for (const c of writes) {
      if (c.op !== 'accept') continue;
      accepts++;
      events += (c.args[0] as unknown[]).length;
    }
    if (events > 0) afterAccepts(events, accepts);
  }
  waitForIdle(pacer.idleMs); // what waits is merged once idle (ids read back at open too)
}

// Merges of ids into event_ids run when they cost the answers least (./merge-pacer.ts): paced by
// the accepts under light load, deferred during a burst, slice after slice when idle.
const pacer = new MergePacer({ slice: writer.mergeSlice, idleMs: (workerData as { mergeIdleMs?: number }).mergeIdleMs });
let lastNow = 0; // the callers' clock (tests move it)
let lastMergeError = '';
let idleWait: NodeJS.Timeout | NodeJS.Immediate | undefined; // whenIdle, on a timer or next turn

function afterAccepts(events: number, calls: number): void {
  for (let n = pacer.afterAccepts(events, calls, writer.mergeState, performance.now()); n > 0; n--) {
    if (mergeSlice() !== 'done') break;
  }
}

function waitForIdle(ms: number): void {
  if (idleWait === undefined && !closing && writer.mergeState !== 'idle') idleWait = setTimeout(whenIdle, ms);
}

/** A slice once the store is idle, then the next one a turn of the event loop later (a call that comes waits for one slice at most). */
function whenIdle(): void {
  idleWait = undefined;
  const wait = pacer.untilIdle(performance.now());
  if (wait > 0) waitForIdle(wait);
  // Nothing written (the store is not open, or the slice failed): tried again later, not in a loop.
  else if (mergeSlice() !== 'done') waitForIdle(pacer.idleMs);
  else if (!closing && writer.mergeState !== 'idle') idleWait = setImmediate(whenIdle);
}

/** One slice of the merge: 'done' when one was written, 'none' when nothing was, 'failed' (logged once per reason). */
function mergeSlice(): 'done' | 'none' | 'failed' {
  if (closing) return 'none';
  try {
    return writer.indexIds(lastNow) ? 'done' : 'none';
  } catch (err) {
    // A store that cannot write has been logged by fail(); the merge is taken up again at reopen.
    const reason = err instanceof Error ? err.message : String(err);
    if (!(err instanceof StoreUnavailableError) && reason !== lastMergeError) {
      port.postMessage({ log: { level: 'error', msg: 'merging event ids failed', detail: { reason } } });
    }
    lastMergeError = reason;
    return 'failed';
  }
}

function write(c: Call): unknown {
  switch (c.op) {
    case 'accept':
      return toWireAccepted(writer.accept((c.args[0] as WireEvent[]).map(fromWireEvent), c.now, c.args[1]));
    case 'claim':
      return writer.claim(c.args[0], c.args[1], c.args[2], c.now, c.args[3]);
    case 'settle':
      for (const s of c.args[0]) writer.settle(s, c.now);
      return undefined;
    case 'release':
      return writer.releaseClaims(c.args[0], c.now);
    case 'extend':
      return writer.extendLeases(c.args[0], c.args[1], c.now);
    case 'replay':
      return writer.replay(c.args[0], c.now);
    case 'writeCursor':
      return writer.writeCursor(c.args[0], c.args[1], c.args[2]);
    case 'lease':
      return writer.lease(c.args[0], c.args[1], c.args[2], c.now);
    case 'releaseLease':
      return writer.releaseLease(c.args[0], c.args[1]);
    default:
      throw new Error(`not a write: ${c.op}`);
  }
}

function read(c: Call): unknown {
  switch (c.op) {
    case 'probe':
      return writer.probe(c.now);
    case 'list':
      return writer.list(c.args[0], c.now);
    case 'show':
      return writer.show(c.args[0], c.now);
    case 'listEvents':
      return writer.listEvents(c.args[0], c.now);
    case 'showEvent':
      return writer.showEvent(c.args[0], c.now);
    case 'backlog':
      return writer.backlog(c.now);
    case 'counts':
      return writer.counts(c.now);
    case 'prune':
      return writer.prune(c.args[0], c.now);
    case 'stats':
      return { ...writer.stats };
    case 'searchEvents':
      return writer.searchEvents(c.args[0], c.now);
    case 'readCursor':
      return writer.readCursor(c.args[0], c.args[1], c.now);
    case 'lastPushedTasks':
      return [...writer.lastPushedTasks(c.args[0], c.args[1], c.args[2], c.now)];
    default:
      throw new Error(`unknown operation: ${c.op}`);
  }
}

function reply(replies: Reply[]): void {
  port.postMessage({ replies });
}

function wireError(err: unknown): WireError {
  return {
    message: err instanceof Error ? err.message : String(err),
    name: err instanceof Error ? err.name : 'Error',
    unavailable: err instanceof StoreUnavailableError,
  };
}
