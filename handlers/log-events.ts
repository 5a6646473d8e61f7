// Logs every event, one line each: the simplest handler, and a template to copy.
// On by default; LOG_EVENTS=false turns it off (for example once your own handlers run).
import { defineHandler } from 'hubex-router';

export default defineHandler({
  // Defaults to the file name; shown in `hubex-router deliveries list` and in the logs.
  name: 'log-events',
  // Every event: '*'. Use names ('task.created'), numeric event ids (40), or a list of them.
  on: '*',
  enabled: process.env.LOG_EVENTS !== 'false',
  handle({ event, log }) {
    // ctx.log is bound to this delivery (handler, delivery id, event id, attempt).
    log.info({ event: event.name, eventID: event.eventID, entity: event.entity, receivedAt: event.receivedAt }, 'event received');
  },
});
