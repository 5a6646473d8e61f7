// The package's entry point: what integrators import for typing handlers and for embedding the router.
export { buildApp, type AppDeps } from './server.js';
export { loadConfig, readEnv, ConfigError, type Config, type Env } from './config.js';
export { hubexOptionsFromEnv } from './hubex-env.js';
export type { HubexEvent, EntityRef, KnownEventName } from './events/event.js';
export { EventCatalogue, KNOWN_EVENTS, type CatalogueEntry } from './events/catalogue.js';
export {
  defineHandler,
  type AssetEvent,
  type DeadContext,
  type DeadError,
  type EventName,
  type EventOf,
  type EventSelector,
  type Handler,
  type HandlerContext,
  type HandlerDefinition,
  type HandlerPolicy,
  type TaskEvent,
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
export type {
  AcceptedEvent,
  AcceptResult,
  AttemptRecord,
  Backend,
  DeliveryDetail,
  DeliveryRecord,
  DeliveryStatus,
  DeliveryWorker,
  Health,
  IncomingEvent,
  ReplayResult,
  Store,
} from './store/contract.js';
export { DEFAULT_TENANT } from './store/contract.js';
export { createSqliteBackend, SqliteStore, type SqliteBackendOptions, type SqliteStoreOptions } from './store/sqlite/index.js';
export { createRedisBackend, RedisStore, type RedisBackendOptions, type RedisStoreOptions } from './store/redis/index.js';
export { openBackend, openStore } from './store/open.js';
export { ERROR_CODES, HttpError, PermanentError, HandlerTimeoutError, StoreUnavailableError, type ErrorCode } from './errors.js';
export { HubexApiError, HubexConfigError, type HubexClient } from './hubex/index.js';
