// The package's entry point: what integrators import for typing and for embedding the router.
export { buildApp, type AppDeps } from './server.js';
export { loadConfig, readEnv, ConfigError, type Config, type Env } from './config.js';
export type { HubexEvent, EntityRef } from './events/event.js';
export { EventCatalogue, KNOWN_EVENTS, type CatalogueEntry } from './events/catalogue.js';
export type { Inbox, AcceptResult, AcceptedEvent, Health } from './queue/inbox.js';
export { SqliteInbox, type SqliteInboxOptions } from './queue/sqlite/sqlite-inbox.js';
export { ERROR_CODES, HttpError, StoreUnavailableError, type ErrorCode } from './errors.js';
