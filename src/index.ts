// The package's entry point: what integrators import for typing handlers and for embedding the router.
export { buildApp, type AppDeps, type Store } from './server.js';
export { loadConfig, readEnv, ConfigError, type Config, type Env } from './config.js';
export type { HubexEvent, EntityRef } from './events/event.js';
export { EventCatalogue, KNOWN_EVENTS, type CatalogueEntry } from './events/catalogue.js';
export {
  defineHandler,
  type EventSelector,
  type Handler,
  type HandlerContext,
  type HandlerDefinition,
} from './delivery/define-handler.js';
export { loadHandlers, HandlerLoadError, BUILTIN_HANDLERS_DIR } from './delivery/loader.js';
export {
  listDeliveries,
  showDelivery,
  replayDeliveries,
  OperationError,
  type ListOptions,
  type ReplayRequest,
  type ReplayProgress,
} from './delivery/operations.js';
export type { Inbox, AcceptResult, AcceptedEvent, Health } from './queue/inbox.js';
export type {
  DeliveryStore,
  DeliveryStatus,
  DeliveryRecord,
  DeliveryDetail,
  AttemptRecord,
  ReplayResult,
} from './queue/deliveries.js';
export { SqliteInbox, type SqliteInboxOptions } from './queue/sqlite/sqlite-inbox.js';
export { RedisStore, type RedisStoreOptions } from './queue/redis/redis-store.js';
export { openStore } from './queue/open-store.js';
export {
  ERROR_CODES,
  HttpError,
  PermanentError,
  HandlerTimeoutError,
  StoreUnavailableError,
  type ErrorCode,
} from './errors.js';
