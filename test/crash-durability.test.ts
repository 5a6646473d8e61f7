// The durability promise: an event the router acknowledged with 2xx is in the SQLite file, even
// when the process is killed with SIGKILL in the middle of a load. Real child process, real socket.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../src/store/sqlite/store.js';
import { httpRequest, spawnRouter } from './support/spawn-router.js';
import { tempDir } from './support/test-app.js';

/** Keep-alive connections, each with one request out at a time. */
const CONCURRENCY = 40;
/** SIGKILL once this many requests were acknowledged, or after KILL_AFTER_MS, whichever comes first. */
const KILL_AFTER_ACKS = 1500;
const KILL_AFTER_MS = 1500;
/** Hard bounds on one round of load, whatever happens. */
const MAX_REQUESTS = 5000;
const MAX_LOAD_MS = 4000;
/**
 * A round whose kill found every request already answered (possible on a loaded machine, rare) is
 * followed by another on the same folder, up to this many: crash, recover, crash again.
 */
const MAX_ROUNDS = 3;

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
});

interface Round {
  /** Every event id the router acknowledged, with the text of its request when that was a single object. */
  readonly acked: Map<string, string | undefined>;
  ackedRequests: number;
  sent: number;
  /** Answers that were not 2xx (there should be none: the bodies are valid and unique). */
  readonly non2xx: { status: number; text: string }[];
  /** Connection errors before the kill (there should be none). */
  readonly errorsBeforeKill: string[];
  /** Requests sent before the kill that failed with a connection error: the kill came mid-load. */
  inFlightErrors: number;
  /** Requests sent before the kill whose 2xx was read after it (answered just before the kill). */
  acksAfterKill: number;
  /** Requests sent after the kill, before the workers noticed (they fail, of course). */
  errorsAfterKill: number;
  killedAtMs: number | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

let requestNo = 0;
function body(nonce: string): { text: string; items: number } {
  const n = requestNo++;
  // One request in three is a small array (2 to 4 events); the rest are single objects.
  if (n % 3 === 2) {
    const size = 2 + (Math.floor(n / 3) % 3);
    const items = Array.from({ length: size }, (_, i) => ({
      EventID: 41,
      AssetID: 10_000 + n,
      Note: `crash ${nonce} request ${n} item ${i}`,
    }));
    return { text: JSON.stringify(items), items: size };
  }
  return { text: JSON.stringify({ EventID: 40, AssetID: 10_000 + n, Note: `crash ${nonce} request ${n}` }), items: 1 };
}

/** Starts a router on the folder, loads it from CONCURRENCY connections, SIGKILLs it mid-load. */
async function loadAndKill(dataDir: string, nonce: string): Promise<Round> {
  // LOG_LEVEL=warn: the CPU goes to the store, not to a log line per request (the banner gives the port).
  const router = await spawnRouter({ dataDir, env: { LOG_LEVEL: 'warn' } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const round: Round = {
    acked: new Map(),
    ackedRequests: 0,
    sent: 0,
    non2xx: [],
    errorsBeforeKill: [],
    inFlightErrors: 0,
    acksAfterKill: 0,
    errorsAfterKill: 0,
    killedAtMs: undefined,
    exit: undefined,
  };
  const t0 = performance.now();
  let killed = false;
  let stop = false;
  const killNow = () => {
    if (killed) return;
    killed = true;
    round.killedAtMs = Math.round(performance.now() - t0);
    router.child.kill('SIGKILL');
  };
  // Killed a turn after it is due (setImmediate), not from the callback that finds it due: by then
  // the answers already waiting in socket buffers were read and their workers have sent fresh
  // requests, which the router is still working on.
  let killDue = false;
  const killSoon = () => {
    if (killDue) return;
    killDue = true;
    setImmediate(killNow);
  };
  const killTimer = setTimeout(killSoon, KILL_AFTER_MS);
  const stopTimer = setTimeout(() => (stop = true), MAX_LOAD_MS);

  const worker = async () => {
    while (!stop && round.sent < MAX_REQUESTS) {
      const { text, items } = body(nonce);
      const sentBeforeKill = !killed;
      round.sent++;
      try {
        const res = await httpRequest(router.url(), { body: text, agent, timeoutMs: 5000 });
        if (res.status !== 200 && res.status !== 202) {
          round.non2xx.push({ status: res.status, text: res.text.slice(0, 300) });
          continue;
        }
        expect(res.json).toMatchObject({ accepted: items, duplicates: 0 });
        const events = res.json.events as { id: string; duplicate: boolean }[];
        expect(events).toHaveLength(items);
        for (const e of events) round.acked.set(e.id, items === 1 ? text : undefined);
        round.ackedRequests++;
        if (killed) round.acksAfterKill++;
        if (round.ackedRequests >= KILL_AFTER_ACKS) killSoon();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === undefined) throw err; // an assertion above, not a connection error
        if (!sentBeforeKill) round.errorsAfterKill++;
        else if (killed) round.inFlightErrors++;
        else round.errorsBeforeKill.push(`${code}: ${(err as Error).message}`);
        if (killed) return; // the router is gone: this connection is done
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    clearTimeout(killTimer);
    clearTimeout(stopTimer);
    agent.destroy();
    if (!killed) await router.kill('SIGKILL'); // the load ended first: the round is a failure (below)
  }
  round.exit = await router.exited;
  return round;
}

describe('crash durability', () => {
  it('kill -9 of a child process that serves under load loses no acknowledged event', async () => {
    const tmp = tempDir('hubex-router-crash-');
    cleanup = tmp.remove;
    const nonce = randomUUID();
    const acked = new Map<string, string | undefined>();
    const rounds: Round[] = [];
    for (let r = 0; r < MAX_ROUNDS; r++) {
      const round = await loadAndKill(tmp.dir, nonce);
      rounds.push(round);
      for (const [id, text] of round.acked) acked.set(id, text);
      const summary = JSON.stringify({ round: r + 1, ...round, acked: round.acked.size, non2xx: round.non2xx.slice(0, 3) });
      if (process.env.CRASH_DEBUG) console.log(summary);

      // Each round: a real load, all of it acknowledged until the kill, and a real SIGKILL in it.
      expect(round.killedAtMs, summary).toBeDefined();
      expect(round.exit, summary).toEqual({ code: null, signal: 'SIGKILL' });
      expect(round.errorsBeforeKill, summary).toEqual([]);
      expect(round.non2xx, summary).toEqual([]);
      expect(round.ackedRequests, summary).toBeGreaterThan(100);
      // Every request had one request out when the kill came: answered just before it, or failed.
      expect(round.inFlightErrors + round.acksAfterKill, summary).toBe(CONCURRENCY);
      if (round.inFlightErrors > 0) break;
    }
    const summary = JSON.stringify(rounds.map((r) => ({ ...r, acked: r.acked.size, non2xx: r.non2xx.length })));

    // Every acknowledged event is a row of the file the dead process left behind.
    const file = join(tmp.dir, DB_FILE);
    expect(existsSync(file)).toBe(true);
    const db = new Database(file); // read-write, so that SQLite may recover the WAL as any new opener would
    let stored: Set<string>;
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      stored = new Set(db.prepare('SELECT id FROM events').pluck().all() as string[]);
    } finally {
      db.close();
    }
    const missing = [...acked.keys()].filter((id) => !stored.has(id));
    expect(missing, `${missing.length} acknowledged events are not in the file; ${summary}`).toEqual([]);
    expect(stored.size).toBeGreaterThanOrEqual(acked.size);

    // Not vacuous: the last kill came while the router was still working on requests it had not answered.
    expect(rounds.at(-1)!.inFlightErrors, summary).toBeGreaterThan(0);

    // A new router on the same folder serves, and knows what the dead one acknowledged.
    const again = await spawnRouter({ dataDir: tmp.dir });
    const ready = await httpRequest(`${again.base}/readyz`);
    expect(ready.status, ready.text).toBe(200);
    const [ackedId, ackedBody] = [...acked].find(([, text]) => text !== undefined)!;
    const dup = await httpRequest(again.url(), { body: ackedBody! });
    expect(dup.status, dup.text).toBe(200);
    expect(dup.json).toEqual({ accepted: 0, duplicates: 1, events: [{ id: ackedId, name: 'asset.created', duplicate: true }] });
    const fresh = await httpRequest(again.url(), { body: JSON.stringify({ EventID: 40, AssetID: 1, Note: `after ${nonce}` }) });
    expect(fresh.status, fresh.text).toBe(202);
    expect(await again.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});
