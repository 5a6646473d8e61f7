// What a sender controls cannot grow the logger's memory: the keys of a logged object (a handler
// that logs event.data logs the sender's keys) are remembered only when short.
import v8 from 'node:v8';
import vm from 'node:vm';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../src/observability/log.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

it('logging objects with long, ever new keys does not keep them', () => {
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const log = createLogger('info', sink);
  const big = (i: number, j: number) => `${'k'.repeat(50_000)}-${i}-${j}`;
  log.info({ data: { warm: 1 } }, 'warm up');
  const before = heap();
  // 100 lines of 10 keys of 50,000 characters: about 100 MB if every key were kept.
  for (let i = 0; i < 100; i++) {
    const data: Record<string, number> = {};
    for (let j = 0; j < 10; j++) data[big(i, j)] = j;
    log.info({ data }, 'event received');
  }
  expect(heap() - before).toBeLessThan(20 * 1024 * 1024);
});
