// The HubEx API client: what handlers get as ctx.hubex, and what the command line uses.
export { createHubexClient, HubexClient, fillPath, type HubexClientOptions, type HubexPaths, type PathsWith, type RequestOptions, type Result, type TaskDetails, type TaskListItem, type PatchData, type Asset, type Company, type WebhookMergeData, type WebhookGetResult, type EventCatalogueItem } from './client.js';
export { HubexApiError, RETRYABLE_STATUSES } from './errors.js';
export { HubexHttp, type HubexHttpOptions, type CallOptions, type HubexResponse, type Method } from './http.js';
export { paginate, count, itemsOf, parseContentRange, type PageOptions, type ContentRange } from './paginate.js';
export { TokenManager, type JwtResult } from './token-manager.js';
