// When the store worker merges ids into event_ids (src/store/sqlite/merge-pacer.ts): paced by the
// accepts under light load, not at all during a burst until too many ids wait, and slice after
// slice once the store is idle. The pacer alone, with the clock the test gives it.
import { describe, expect, it } from 'vitest';
import { MergePacer, type MergeState } from '../src/store/sqlite/merge-pacer.js';

/** `count` commits of `calls` accept calls with `size` events each, one every ms; the slices asked for. */
function commits(p: MergePacer, count: number, calls: number, size: number, state: MergeState): number {
  let slices = 0;
  for (let i = 0; i < count; i++) slices += p.afterAccepts(calls * size, calls, state, i);
  return slices;
}

/** A pacer that has seen a burst: commits of 12 calls, as under saturation. */
function afterBurst(): MergePacer {
  const p = new MergePacer({ slice: 250 });
  commits(p, 100, 12, 1, 'idle');
  expect(p.busy).toBe(true);
  return p;
}

describe('merge pacer', () => {
  it('under light load, a slice for every slice/pace events accepted', () => {
    const p = new MergePacer({ slice: 250 });
    // 1,000 commits of one event: 1,500 ids earned, 6 slices of 250.
    expect(commits(p, 1000, 1, 1, 'due')).toBe(6);
    expect(p.busy).toBe(false);
  });

  it('nothing is earned while no merge is due', () => {
    const p = new MergePacer({ slice: 250 });
    expect(commits(p, 1000, 1, 1, 'idle')).toBe(0);
    expect(commits(p, 1, 1, 1, 'due')).toBe(0); // no credit was saved up meanwhile
  });

  it('during a burst (commits of many calls) nothing is merged while a merge is only due', () => {
    expect(commits(afterBurst(), 1000, 12, 1, 'due')).toBe(0);
  });

  it('a steady trickle of large batches (one call per commit) is light load: merged at the pace', () => {
    const p = new MergePacer({ slice: 250 });
    expect(commits(p, 100, 1, 50, 'due')).toBe(30); // 5,000 events: 7,500 ids earned, 30 slices
    expect(p.busy).toBe(false);
  });

  it('when ids pile up (behind), the pace holds under a burst too, so memory stays bounded', () => {
    // 12,000 events: 18,000 ids earned, 72 slices (more ids merged than accepted).
    expect(commits(afterBurst(), 1000, 12, 1, 'behind')).toBe(72);
  });

  it('a commit of many events: at most four slices while due, but all it earned when behind', () => {
    expect(new MergePacer({ slice: 250 }).afterAccepts(1000, 1, 'due', 0)).toBe(4);
    // Two senders of 1,000-event batches: each commit merges more than it accepted.
    const p = afterBurst();
    expect(commits(p, 10, 2, 1000, 'behind')).toBeGreaterThanOrEqual((10 * 2000 * 1.5) / 250 - 4);
  });

  it('light load again after a burst: the pace comes back as the commits shrink', () => {
    const p = afterBurst();
    commits(p, 60, 1, 1, 'due');
    expect(p.busy).toBe(false);
    expect(commits(p, 500, 1, 1, 'due')).toBe(3);
  });

  it('counts as idle idleMs after the last accept', () => {
    const p = new MergePacer({ slice: 250, idleMs: 100 });
    expect(p.untilIdle(5)).toBe(0); // nothing accepted yet
    p.afterAccepts(1, 1, 'due', 1000);
    expect(p.untilIdle(1000)).toBe(100);
    expect(p.untilIdle(1060)).toBe(40);
    expect(p.untilIdle(1100)).toBe(0);
  });
});
