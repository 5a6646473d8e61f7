// The HubEx API client handlers get as ctx.hubex. `request` is typed for every path of WORK, ES,
// MSG, COMMON, TSTG and AUTHZ (./types.ts); the named helpers cover what handlers do most,
// entity id first.
import { HubexApiError } from './errors.js';
import { HubexHttp } from './http.js';
import type { CallOptions, HubexHttpOptions, Method } from './http-types.js';
import { count, paginate, type PageOptions } from './paginate.js';
import type {
  Asset,
  Company,
  EventCatalogueItem,
  ListItem,
  ListOptions,
  Operation,
  PatchData,
  PathsWith,
  RequestOptions,
  Result,
  StageListItem,
  TaskDetails,
  TaskFilter,
  TaskListItem,
  WebhookGetResult,
  WebhookListItem,
  WebhookMergeData,
} from './types.js';

// The API's types come with the client, for code that imports only this module.
export type * from './types.js';

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
    const res = await this.http.call<Result<Operation<P, M>>>(
      method,
      fillPath(path, params as Record<string, unknown> | undefined),
      rest as CallOptions,
    );
    return res.body;
  }

  /**
   * Walks any list, page by page (`Range: items=FROM-TILL`); map-shaped answers give items with
   * their key as `id`. Items, filters and path parameters are typed from the path.
   */
  list<P extends PathsWith<'GET'>>(
    path: P,
    options: ListOptions<Operation<P, 'GET'>> = {},
  ): AsyncIterableIterator<ListItem<Result<Operation<P, 'GET'>>>> {
    const { params, ...rest } = options;
    return paginate(this.http, fillPath(path, params as Record<string, unknown> | undefined), rest as PageOptions);
  }

  /** How many items a list holds (`HEAD`, the total of `Content-Range`). */
  count<P extends PathsWith<'GET'>>(path: P, options: Omit<ListOptions<Operation<P, 'GET'>>, 'pageSize'> = {}): Promise<number> {
    const { params, ...rest } = options;
    return count(this.http, fillPath(path, params as Record<string, unknown> | undefined), rest as PageOptions);
  }

  /**
   * A GET of one record. HubEx may answer 204 ("success, but no such resource") where a 404 is
   * meant: that becomes a HubexApiError (status 204, not retryable), never an undefined record.
   */
  async #one<T>(path: string, params: Record<string, unknown>, o: Signalled): Promise<T> {
    const filled = fillPath(path, params);
    const res = await this.http.call<T>('GET', filled, { signal: o.signal });
    if (res.status === 204 || res.body === undefined || res.body === null) {
      throw new HubexApiError({
        status: res.status,
        method: 'GET',
        path: filled,
        hubexMessage: res.status === 204 ? undefined : 'an empty answer',
      });
    }
    return res.body;
  }

  readonly work = {
    /** `GET /WORK/Tasks/{taskID}`: the task's details (DetailedInfoResult). */
    getTask: (taskID: number, o: Signalled = {}): Promise<TaskDetails> => this.#one<TaskDetails>('/WORK/Tasks/{taskID}', { taskID }, o),
    /**
     * Every task that matches (`GET /WORK/Tasks` with filters), page by page, each with its `id`.
     * Soft-deleted tasks are included unless `isDeleted: false` is passed (HubEx's default).
     */
    listTasks: (filter: TaskFilter = {}, o: Omit<PageOptions, 'query'> = {}): AsyncIterableIterator<TaskListItem> =>
      this.list('/WORK/Tasks', { ...o, query: filter }),
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
    /** The stages the task may move to next, each with its `id` (the taskStageID for moveToStage). */
    nextStages: (taskID: number, o: Omit<PageOptions, 'query'> = {}): AsyncIterableIterator<StageListItem> =>
      this.list('/WORK/Tasks/{taskID}/stages/next', { ...o, params: { taskID } }),
  };

  readonly es = {
    /** `GET /ES/Assets/{assetID}` (AssetDetailedInfoResult). */
    getAsset: (assetID: number, o: Signalled = {}): Promise<Asset> => this.#one<Asset>('/ES/Assets/{assetID}', { assetID }, o),
    /** `GET /ES/Companies/{id}` (Companies GetResult). */
    getCompany: (companyID: number, o: Signalled = {}): Promise<Company> => this.#one<Company>('/ES/Companies/{id}', { id: companyID }, o),
  };

  readonly msg = {
    webhooks: {
      /**
       * `GET /MSG/Webhooks`: HubEx lists each webhook's id, name, isActive, callsRemaining and
       * lastCall (ListResult); `get(id)` has its uri, events and taskStages.
       */
      list: (o: Omit<PageOptions, 'query'> = {}): AsyncIterableIterator<WebhookListItem & { id: number }> => this.list('/MSG/Webhooks', o),
      /** `GET /MSG/Webhooks/{id}` (GetResult). */
      get: (id: number, o: Signalled = {}): Promise<WebhookGetResult> => this.#one<WebhookGetResult>('/MSG/Webhooks/{id}', { id }, o),
      /** `POST /MSG/Webhooks`: creates webhooks, or updates those given with an `id`; answers their ids. */
      save: (webhooks: readonly WebhookMergeData[], o: Signalled = {}) =>
        this.request('POST', '/MSG/Webhooks', { body: [...webhooks], signal: o.signal }),
      /** Creates one webhook; answers its id. Not retried (a lost answer would make two). */
      create: async (webhook: Omit<WebhookMergeData, 'id'>, o: Signalled = {}): Promise<number> => {
        const ids = await this.request('POST', '/MSG/Webhooks', { body: [{ ...webhook, id: null }], signal: o.signal });
        const id = ids?.[0];
        if (typeof id !== 'number') throw new Error("HubEx answered POST /MSG/Webhooks without the new webhook's id");
        return id;
      },
      /**
       * Updates one webhook: the MSG document has no PUT for a webhook, so this is the same
       * `POST /MSG/Webhooks` with the id. HubEx merges whole records: send every field you keep.
       */
      update: async (id: number, webhook: Omit<WebhookMergeData, 'id'>, o: Signalled = {}): Promise<void> => {
        await this.request('POST', '/MSG/Webhooks', { body: [{ ...webhook, id }], signal: o.signal, retrySafe: true });
      },
      activate: (id: number, o: Signalled = {}) => this.request('PUT', '/MSG/Webhooks/activate/{id}', { params: { id }, signal: o.signal }),
      deactivate: (id: number, o: Signalled = {}) =>
        this.request('PUT', '/MSG/Webhooks/deactivate/{id}', { params: { id }, signal: o.signal }),
      delete: (id: number, o: Signalled = {}) => this.request('DELETE', '/MSG/Webhooks/{id}', { params: { id }, signal: o.signal }),
    },
  };

  readonly common = {
    /** The installation's event catalogue: `{id, code, name}` for each event id (walked with Range, never cut). */
    events: async (o: Signalled = {}): Promise<EventCatalogueItem[]> => {
      const all: EventCatalogueItem[] = [];
      for await (const e of this.list('/COMMON/Events', { signal: o.signal, pageSize: 500 })) all.push(e);
      return all;
    },
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
