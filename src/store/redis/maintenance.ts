// What changes stored deliveries and events on Redis from the tools: replay (dead or done jobs
// back to waiting, a fresh cycle, their history kept) and retention (finished events and their
// jobs deleted).
import type { DeliveryId, PruneResult, ReplayResult, ReplaySelector } from '../contract.js';
import { type DeliveryJob, jobIdOf, QUEUE_NAME, type RedisParts, settledData } from './jobs.js';
import { eventsOf } from './reads.js';

export async function replay(
  r: RedisParts,
  selector: ReplaySelector,
  onProgress?: (p: { done: number; total: number }) => void,
): Promise<ReplayResult> {
  const replayed: DeliveryId[] = [];
  const skipped: DeliveryId[] = [];
  const again = async (job: DeliveryJob, state: 'failed' | 'completed') => {
    const now = r.now();
    const d = settledData(job);
    await job.updateData({ ...d, attempt: 0, replays: d.replays + 1, dueAt: now, updatedAt: now });
    // A fresh cycle: stalls of the last one (BullMQ's counter) do not count against it.
    await r.redis.hdel(r.key(`${QUEUE_NAME}:${job.id}`), 'stc');
    try {
      await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (err) {
      await job.updateData(job.data).catch(() => {}); // it moved meanwhile: leave its record as it was
      throw err;
    }
  };
  if ('ids' in selector) {
    for (const id of selector.ids) {
      const job = (await r.queue.getJob(String(id))) as DeliveryJob | undefined;
      const state = job ? await job.getState() : 'unknown';
      if (!job || (state !== 'failed' && state !== 'completed')) {
        skipped.push(id);
        continue;
      }
      try {
        await again(job, state);
        replayed.push(id);
      } catch {
        skipped.push(id); // it moved in between (another instance ran or replayed it)
      }
    }
    return { replayed, skipped };
  }
  // Every dead one (of a handler, of an event name) as the list stands now: a replayed one that
  // fails again joins the list anew and is not taken a second time by this call.
  const ids: string[] = [];
  for (let start = 0; ; start += 500) {
    const jobs = (await r.queue.getJobs(['failed'], start, start + 499, true)) as DeliveryJob[];
    for (const job of jobs) {
      if (!job?.id) continue;
      if (selector.handler && job.data.handler !== selector.handler) continue;
      if (selector.eventName && job.data.event.name !== selector.eventName) continue;
      ids.push(job.id);
    }
    if (jobs.length < 500) break;
  }
  for (const [i, id] of ids.entries()) {
    if (i > 0 && i % 100 === 0) onProgress?.({ done: i, total: ids.length });
    const job = (await r.queue.getJob(id)) as DeliveryJob | undefined;
    if (!job || (await job.getState()) !== 'failed') continue; // replayed by someone else meanwhile
    try {
      await again(job, 'failed');
      replayed.push(id);
    } catch {
      // taken by someone else meanwhile
    }
  }
  return { replayed, skipped };
}

/**
 * Deletes events received before `cutoff` whose deliveries all finished, with their jobs; an
 * event with a dead, pending or running delivery stays. Completed jobs of a kept event go when
 * BullMQ's removeOnComplete age passes.
 */
export async function prune(r: RedisParts, cutoff: number): Promise<PruneResult> {
  let events = 0;
  let deliveries = 0;
  let after = 0;
  for (;;) {
    const ids = await r.redis.zrangebyscore(r.key('events'), `(${after}`, '+inf', 'LIMIT', 0, 200);
    if (ids.length === 0) break;
    const rows = await eventsOf(r, ids);
    let old = false;
    for (const e of rows) {
      after = e.seq;
      if (e.receivedAt >= cutoff) break;
      old = true;
      const jobIds = e.handlers.map((h) => jobIdOf(e.id, h));
      const states = await Promise.all(jobIds.map((j) => r.queue.getJobState(j)));
      if (states.some((s) => s !== 'completed' && s !== 'unknown')) continue;
      for (const j of jobIds) {
        const job = await r.queue.getJob(j);
        // Checked again just before: a replay in between made it pending, and it stays.
        if (job && (await job.isCompleted())) {
          await job.remove().catch(() => {});
          deliveries++;
        }
      }
      await r.redis
        .multi()
        .del(r.key(`ev:${e.id}`))
        .zrem(r.key('events'), e.id)
        .zrem(r.key('unrouted'), e.id)
        .exec();
      events++;
    }
    if (!old || rows.at(-1)!.receivedAt >= cutoff) break;
  }
  return { events, deliveries };
}
