// Reacts to a task event: reads the task from HubEx, then adds a message to its conversation.
// A template for handlers that call HubEx back. Off unless TASK_COMMENT_ON names the events:
//
//   TASK_COMMENT_ON=12                 numeric HubEx event ids or catalogue names, comma-separated
//   TASK_COMMENT_TEXT='Seen by the integration'   the message (optional)
//
// It needs ctx.hubex, the HubEx client (HUBEX_SERVICE_TOKEN or HUBEX_ACCESS_TOKEN).
import { defineHandler, type EventSelector } from 'hubex-router';

export interface CommentOnTaskOptions {
  /** The events to react to; none leaves the handler off. */
  readonly on: readonly EventSelector[];
  /** The message; the task's title and the event's name are appended. */
  readonly text?: string;
}

/** The handler, configured in code (the default export below configures it from the environment). */
export function commentOnTask({ on, text = 'Received by hubex-router' }: CommentOnTaskOptions) {
  return defineHandler({
    name: 'comment-on-task',
    on: on.length > 0 ? on : ['*'],
    enabled: on.length > 0,
    // Events without a task are not for this handler: skipped, not failed.
    where: (event) => event.taskID !== undefined,
    async handle({ event, hubex, log, signal }) {
      const taskID = event.taskID!;
      // Pass `signal` on: a timeout or a shutdown then cancels the call instead of leaving it running.
      const task = await hubex.work.getTask(taskID, { signal }); // GET /WORK/Tasks/{taskID}
      // Delivery is at least once: the event id in the text lets a person (or a check) see a repeat.
      const message = `${text}: ${event.name} (task ${task.number ?? taskID}), event ${event.id}`;
      // POST /WORK/Tasks/{taskID}/conversation. A HubEx 404 (task gone) or 403 sends the delivery
      // to the dead letters at once; a 5xx or a timeout is retried later.
      await hubex.work.addMessage(taskID, { message, isExternal: false }, { signal });
      log.info({ taskID }, 'message added to the task');
    },
  });
}

const selectors = (process.env.TASK_COMMENT_ON ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map((s) => (/^\d+$/.test(s) ? Number(s) : s));

export default commentOnTask({
  on: selectors,
  ...(process.env.TASK_COMMENT_TEXT ? { text: process.env.TASK_COMMENT_TEXT } : {}),
});
