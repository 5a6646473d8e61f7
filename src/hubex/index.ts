// The HubEx API client: what handlers get as ctx.hubex, and what the command line uses.
export {
  createHubexClient,
  fillPath,
  HubexClient,
  hubexOptionsFromEnv,
  type Asset,
  type Company,
  type EventCatalogueItem,
  type HubexClientOptions,
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
} from './client.js';
export { HubexApiError, isHubexApiError, RETRYABLE_STATUSES, type HubexErrorFields } from './errors.js';
export { HubexHttp, retryAfter, type CallOptions, type HubexHttpOptions, type HubexResponse, type Method } from './http.js';
export { count, itemsOf, paginate, parseContentRange, type ContentRange, type PageOptions } from './paginate.js';
export { TokenManager, type JwtResult, type TokenManagerOptions } from './token-manager.js';
