// When the store worker merges ids into event_ids (src/queue/sqlite/merge-pacer.ts): paced by the
// accepts under light load, not at all during a burst until too many ids wait, and slice after
// slice once the store is idle. The pacer alone, with the clock the test gives it.
import { describe, expect, it } from 'vitest';
import { MergePacer, type MergeState } from '../src/queue/sqlite/merge-pacer.js';

/** Commits of `size` events each, one every ms from `t0`; the slices the pacer asks for. */
function commits(p: MergePacer, count: number, size: number, state: MergeState, t0 = 0): number {
  let slices = 0;
  for (let i = 0; i < count; i++) slices += p.afterAccepts(size, state, t0 + i);
  return slices;
}

describe('merge pacer', () => {
  it('under light load, a slice for every slice/pace events accepted', () => {
    const p = new MergePacer({ slice: 250 });
    // 1,000 commits of one event: 1,500 ids earned, 6 slices of 250.
    expect(commits(p, 1000, 1, 'due')).toBe(6);
    expect(p.busy).toBe(false);
  });

  it('nothing is earned while no merge is due', () => {
    const p = new MergePacer({ slice: 250 });
    expect(commits(p, 1000, 1, 'idle')).toBe(0);
    expect(commits(p, 1, 1, 'due')).toBe(0); // no credit was saved up meanwhile
  });

  it('during a burst (large commits) nothing is merged while a merge is only due', () => {
    const p = new MergePacer({ slice: 250 });
    commits(p, 100, 12, 'idle'); // the moving average of the commit size reaches the burst's
    expect(p.busy).toBe(true);
    expect(commits(p, 1000, 12, 'due')).toBe(0);
  });

  it('when ids pile up (behind), the pace holds under a burst too, so memory stays bounded', () => {
    const p = new MergePacer({ slice: 250 });
    commits(p, 100, 12, 'idle');
    // 12,000 events: 18,000 ids earned, 72 slices (more ids merged than accepted).
    expect(commits(p, 1000, 12, 'behind')).toBe(72);
  });

  it('a commit of many events runs up to four slices at once', () => {
    const p = new MergePacer({ slice: 250 });
    expect(p.afterAccepts(1000, 'behind', 0)).toBe(4);
  });

  it('light load again after a burst: the pace comes back as the commits shrink', () => {
    const p = new MergePacer({ slice: 250 });
    commits(p, 100, 12, 'idle');
    expect(p.busy).toBe(true);
    commits(p, 60, 1, 'due');
    expect(p.busy).toBe(false);
    expect(commits(p, 500, 1, 'due')).toBe(3);
  });

  it('counts as idle idleMs after the last accept', () => {
    const p = new MergePacer({ slice: 250, idleMs: 100 });
    expect(p.untilIdle(5)).toBe(0); // nothing accepted yet
    p.afterAccepts(1, 'due', 1000);
    expect(p.untilIdle(1000)).toBe(100);
    expect(p.untilIdle(1060)).toBe(40);
    expect(p.untilIdle(1100)).toBe(0);
  });
});
