// The HubEx API client handlers get as ctx.hubex. `request` is typed for every path of WORK, ES,
// MSG, COMMON, TSTG and AUTHZ (types generated from HubEx's OpenAPI documents, see
// scripts/gen-hubex-types.mjs); the named helpers cover what handlers do most, entity id first.
import type { paths as AuthzPaths } from './generated/AUTHZ.js';
import type { paths as CommonPaths } from './generated/COMMON.js';
import type { paths as EsPaths } from './generated/ES.js';
import type { components as MsgComponents, paths as MsgPaths } from './generated/MSG.js';
import type { paths as TstgPaths } from './generated/TSTG.js';
import type { components as WorkComponents, paths as WorkPaths } from './generated/WORK.js';
import { type CallOptions, HubexHttp, type HubexHttpOptions, type Method } from './http.js';
import { count, paginate, type PageOptions } from './paginate.js';

type Prefixed<S extends string, P> = { [K in keyof P & string as `/${S}${K}`]: P[K] };

/** Every path of the six services, as `/SERVICE/path`. */
export type HubexPaths = Prefixed<'AUTHZ', AuthzPaths> &
  Prefixed<'COMMON', CommonPaths> &
  Prefixed<'ES', EsPaths> &
  Prefixed<'MSG', MsgPaths> &
  Prefixed<'TSTG', TstgPaths> &
  Prefixed<'WORK', WorkPaths>;

type Operation<P extends keyof HubexPaths, M extends Method> = NonNullable<HubexPaths[P][Lowercase<M> & keyof HubexPaths[P]]>;

/** The paths that have this method. */
export type PathsWith<M extends Method> = {
  [P in keyof HubexPaths]: [NonNullable<HubexPaths[P][Lowercase<M> & keyof HubexPaths[P]]>] extends [never] ? never : P;
}[keyof HubexPaths];

type PathParams<O> = O extends { parameters: { path: infer X } } ? X : never;
type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
type JsonBody<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : undefined;
/** The 200 (or 201, 202, 206) JSON answer of an operation. */
export type Result<O> = O extends { responses: infer R }
  ? 200 extends keyof R
    ? Json<R[200]>
    : 201 extends keyof R
      ? Json<R[201]>
      : 206 extends keyof R
        ? Json<R[206]>
        : unknown
  : unknown;

export interface RequestOptions<O> extends Omit<CallOptions, 'query' | 'body'> {
  readonly params?: [PathParams<O>] extends [never] ? undefined : PathParams<O>;
  readonly query?: [QueryParams<O>] extends [never] ? undefined : QueryParams<O>;
  readonly body?: [JsonBody<O>] extends [never] ? undefined : JsonBody<O>;
}

// Schemas the helpers take and give.
type WorkSchemas = WorkComponents['schemas'];
export type TaskDetails = WorkSchemas['HubEx.Service.WORK.Api.Results.Tasks.DetailedInfoResult'];
export type TaskListItem = WorkSchemas['HubEx.Service.WORK.Api.Results.Tasks.ListResult'] & { id: number };
export type PatchData = WorkSchemas['HubEx.Service.WORK.Api.Data.Tasks.PatchData'];
export type WebhookMergeData = MsgComponents['schemas']['HubEx.DataProvider.Api.Data.MSG.Webhook.MergeData'];
export type WebhookGetResult = MsgComponents['schemas']['HubEx.Service.MSG.Api.Results.Webhook.GetResult'];
export type Asset = Result<Operation<'/ES/Assets/{assetID}', 'GET'>>;
export type Company = Result<Operation<'/ES/Companies/{id}', 'GET'>>;
export type EventCatalogueItem = Result<Operation<'/COMMON/Events', 'GET'>> extends (infer I)[] | null | undefined ? I : never;

export type HubexClientOptions = HubexHttpOptions;

export interface Signalled {
  readonly signal?: AbortSignal | undefined;
}

export class HubexClient {
  readonly http: HubexHttp;

  constructor(options: HubexClientOptions) {
    this.http = new HubexHttp(options);
  }

  /** Any HubEx call, typed by its path: `hubex.request('GET', '/WORK/Tasks/{taskID}', { params: { taskID: 5 } })`. */
  async request<M extends Method, P extends PathsWith<M>>(
    method: M,
    path: P,
    options: RequestOptions<Operation<P, M>> = {},
  ): Promise<Result<Operation<P, M>>> {
    const { params, ...rest } = options;
    const res = await this.http.call<Result<Operation<P, M>>>(method, fillPath(path, params as Record<string, unknown> | undefined), rest as CallOptions);
    return res.body;
  }

  /** Walks any list, page by page (`Range: items=FROM-TILL`); map-shaped answers give items with their key as `id`. */
  list<T = Record<string, unknown>>(path: PathsWith<'GET'>, options: PageOptions & { params?: Record<string, unknown> } = {}): AsyncIterableIterator<T> {
    return paginate<T>(this.http, fillPath(path, options.params), options);
  }

  /** How many items a list holds (`HEAD`, the total of `Content-Range`). */
  count(path: PathsWith<'GET'>, options: Omit<PageOptions, 'pageSize'> & { params?: Record<string, unknown> } = {}): Promise<number> {
    return count(this.http, fillPath(path, options.params), options);
  }

  readonly work = {
    getTask: (taskID: number, o: Signalled = {}): Promise<TaskDetails> =>
      this.request('GET', '/WORK/Tasks/{taskID}', { params: { taskID }, signal: o.signal }) as Promise<TaskDetails>,
    /** Every task that matches (`GET /WORK/Tasks` with filters), page by page. */
    listTasks: (filter: Readonly<Record<string, string | number | boolean | undefined>> = {}, o: PageOptions = {}) =>
      this.list<TaskListItem>('/WORK/Tasks', { ...o, query: { ...filter, ...o.query } }),
    /** Changes fields: `patchTask(5, [{ field: 'description', value: '...' }])`. */
    patchTask: (taskID: number, changes: readonly PatchData[], o: Signalled = {}) =>
      this.request('PATCH', '/WORK/Tasks/{taskID}', { params: { taskID }, body: [...changes], signal: o.signal }),
    /** Adds a message to the task's conversation (not retried by default: it would be added twice). */
    addMessage: (taskID: number, message: { message: string; isExternal?: boolean }, o: Signalled & { retrySafe?: boolean } = {}) =>
      this.request('POST', '/WORK/Tasks/{taskID}/conversation', {
        params: { taskID },
        body: message,
        signal: o.signal,
        retrySafe: o.retrySafe,
      }),
    moveToStage: (taskID: number, taskStageID: number, o: Signalled & { notes?: string } = {}) =>
      this.request('POST', '/WORK/TaskStagingHistory', {
        body: { taskID, taskStageID, ...(o.notes === undefined ? {} : { notes: o.notes }) },
        signal: o.signal,
      }),
    /** The stages the task may move to next. */
    nextStages: (taskID: number, o: PageOptions = {}) => this.list('/WORK/Tasks/{taskID}/stages/next', { ...o, params: { taskID } }),
  };

  readonly es = {
    getAsset: (assetID: number, o: Signalled = {}): Promise<Asset> =>
      this.request('GET', '/ES/Assets/{assetID}', { params: { assetID }, signal: o.signal }) as Promise<Asset>,
    getCompany: (companyID: number, o: Signalled = {}): Promise<Company> =>
      this.request('GET', '/ES/Companies/{id}', { params: { id: companyID }, signal: o.signal }) as Promise<Company>,
  };

  readonly msg = {
    webhooks: {
      list: (o: PageOptions = {}) => this.list<WebhookGetResult & { id: number }>('/MSG/Webhooks', o),
      get: (id: number, o: Signalled = {}) => this.request('GET', '/MSG/Webhooks/{id}', { params: { id }, signal: o.signal }),
      /** Creates or updates (with `id`) webhooks. */
      save: (webhooks: readonly WebhookMergeData[], o: Signalled = {}) =>
        this.request('POST', '/MSG/Webhooks', { body: [...webhooks], signal: o.signal }),
      activate: (id: number, o: Signalled = {}) => this.request('PUT', '/MSG/Webhooks/activate/{id}', { params: { id }, signal: o.signal }),
      deactivate: (id: number, o: Signalled = {}) => this.request('PUT', '/MSG/Webhooks/deactivate/{id}', { params: { id }, signal: o.signal }),
      delete: (id: number, o: Signalled = {}) => this.request('DELETE', '/MSG/Webhooks/{id}', { params: { id }, signal: o.signal }),
    },
  };

  readonly common = {
    /** The installation's event catalogue: `{id, code, name}` for each event id. */
    events: (o: Signalled = {}) => this.request('GET', '/COMMON/Events', { signal: o.signal }) as Promise<EventCatalogueItem[]>,
  };

  close(): void {
    this.http.close();
  }
}

export function createHubexClient(options: HubexClientOptions): HubexClient {
  return new HubexClient(options);
}

/** `/WORK/Tasks/{taskID}` with `{taskID: 5}` to `/WORK/Tasks/5`; a missing parameter is an error, not "undefined". */
export function fillPath(path: string, params: Record<string, unknown> | undefined): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = params?.[name];
    if (v === undefined || v === null || v === '') throw new TypeError(`${path} needs the path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
}

