// The HubEx API client: what handlers get as ctx.hubex, and what the command line uses. It
// imports nothing of the router, so `hubex-router/hubex` can be used on its own.
export { createHubexClient, fillPath, HubexClient, type HubexClientOptions } from './client.js';
export {
  type Asset,
  type Company,
  type EventCatalogueItem,
  type HubexPaths,
  type ListItem,
  type ListOptions,
  type ListQuery,
  type PatchData,
  type PathsWith,
  type RequestOptions,
  type Result,
  type StageListItem,
  type TaskDetails,
  type TaskFilter,
  type TaskListItem,
  type WebhookGetResult,
  type WebhookListItem,
  type WebhookMergeData,
} from './types.js';
export { HubexApiError, HubexConfigError, isHubexApiError, RETRYABLE_STATUSES, retryAfter, type HubexErrorFields } from './errors.js';
export { HubexHttp } from './http.js';
export type { CallOptions, HubexHttpOptions, HubexResponse, Method } from './http-types.js';
export { count, itemsOf, paginate, parseContentRange, type ContentRange, type PageOptions } from './paginate.js';
export { TokenManager, type JwtResult, type TokenManagerOptions } from './token-manager.js';
export { LocalRateGate, parseRateLimit, spacing, type RateGate, type RateLimit } from './rate-gate.js';
