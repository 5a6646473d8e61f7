// The fake HubEx's API: what each path answers (WORK, ES, MSG, COMMON) once a call has passed
// the checks of ./fake-hubex.ts (X-Application-ID, the token, injected faults). Lists answer with
// Range and Content-Range as HubEx does (1-based, inclusive; cut at 10,000 without Range), in
// the shape each service uses: maps keyed by id, or arrays of items with their id.
export interface FakeTask {
  title?: string;
  taskStageID?: number;
  assetID?: number;
  companyID?: number;
  description?: string;
  [field: string]: unknown;
}

/** The records the fake holds, which tests fill in and read. */
export interface FakeState {
  readonly tasks: Map<number, FakeTask>;
  readonly conversations: Map<number, { message: string; isExternal: boolean }[]>;
  readonly assets: Map<number, Record<string, unknown>>;
  readonly companies: Map<number, Record<string, unknown>>;
  readonly webhooks: Map<number, Record<string, unknown>>;
  readonly events: { id: number; code: string; name: string }[];
  nextWebhookID(): number;
  /** Failed calls a webhook may have before HubEx stops it (its callsRemaining when made or activated). */
  readonly webhookCallBudget: number;
  /** Marks a task changed now (its lastModified), as HubEx does on every change. */
  touch(task: FakeTask): void;
}

/** One call, as the server read it, and how to answer it. */
export interface FakeRequest {
  readonly method: string;
  /** After the base (`/WORK/Tasks/5`), without the query. */
  readonly path: string;
  readonly body: unknown;
  /** The Range header. */
  readonly range: string | undefined;
  /** The query string's parameters. */
  readonly query: URLSearchParams;
  send(status: number, payload?: unknown, headers?: Record<string, string>): void;
  error(status: number, code: string, message: string, headers?: Record<string, string>, asArray?: boolean): void;
}

const LIST_CUT = 10_000;

export function answerApi(r: FakeRequest, s: FakeState, pageCap: number | undefined): void {
  const { method, path, body, send, error } = r;
  const { tasks, conversations, assets, companies, webhooks, events } = s;
  let m: RegExpExecArray | null;
  if (path === '/WORK/Tasks' && (method === 'GET' || method === 'HEAD')) {
    // A map keyed by id; the values carry no id. lastModifiedFrom and lastModifiedTill (UTC ISO
    // 8601) keep the tasks changed in that span: a task never changed has no lastModified.
    const from = dateParam('lastModifiedFrom');
    const till = dateParam('lastModifiedTill');
    if (from === null || till === null) return error(409, 'InvalidData', 'lastModifiedFrom and lastModifiedTill take UTC ISO 8601 dates');
    const inSpan = (t: FakeTask) => {
      if (from === undefined && till === undefined) return true;
      const at = typeof t.lastModified === 'string' ? Date.parse(t.lastModified) : Number.NaN;
      return !Number.isNaN(at) && (from === undefined || at >= from) && (till === undefined || at <= till);
    };
    return list(
      [...tasks.entries()].filter(([, t]) => inSpan(t)).sort((a, b) => a[0] - b[0]),
      (page) => Object.fromEntries(page.map(([id, t]) => [String(id), t])),
    );
  }
  if ((m = /^\/WORK\/Tasks\/(\d+)$/.exec(path))) {
    const id = Number(m[1]);
    const task = tasks.get(id);
    if (!task) return error(404, 'NotFound', `Task ${id} not found`);
    if (method === 'GET') return send(200, { taskID: id, ...task });
    if (method === 'PATCH') {
      if (!Array.isArray(body)) return error(409, 'InvalidData', 'Expected an array of {field, value}');
      for (const p of body as { field: string; value: unknown }[]) task[p.field] = p.value;
      s.touch(task);
      return send(202); // Accepted, no body (WORK document)
    }
  }
  if ((m = /^\/WORK\/Tasks\/(\d+)\/conversation$/.exec(path)) && method === 'POST') {
    const id = Number(m[1]);
    if (!tasks.has(id)) return error(404, 'NotFound', `Task ${id} not found`);
    const b = (body ?? {}) as { message?: unknown; isExternal?: unknown };
    if (typeof b.message !== 'string' || !b.message) return error(409, 'InvalidData', 'message is required');
    const list = conversations.get(id) ?? [];
    list.push({ message: b.message, isExternal: b.isExternal === true });
    conversations.set(id, list);
    return send(201, [{ id: list.length, taskID: id }]); // AddResult[]
  }
  if ((m = /^\/WORK\/Tasks\/(\d+)\/conversations$/.exec(path)) && (method === 'GET' || method === 'HEAD')) {
    const id = Number(m[1]);
    if (!tasks.has(id)) return error(404, 'NotFound', `Task ${id} not found`);
    const messages = (conversations.get(id) ?? []).map((c, i) => [i + 1, c] as const);
    return list(messages, (page) => page.map(([n, c]) => ({ id: n, ...c })));
  }
  if ((m = /^\/WORK\/Tasks\/(\d+)\/stages\/next$/.exec(path)) && method === 'GET') {
    const id = Number(m[1]);
    const stage = tasks.get(id)?.taskStageID ?? 1;
    return list(
      [stage + 1, stage + 2].map((s) => [s, { name: `Stage ${s}` }] as const),
      (page) => Object.fromEntries(page.map(([s, v]) => [String(s), v])),
    );
  }
  if (path === '/WORK/TaskStagingHistory' && method === 'POST') {
    const b = (body ?? {}) as { taskID?: number; taskStageID?: number };
    const task = b.taskID === undefined ? undefined : tasks.get(b.taskID);
    if (!task || typeof b.taskStageID !== 'number') return error(409, 'InvalidData', 'taskID and taskStageID are required');
    task.taskStageID = b.taskStageID;
    s.touch(task);
    return send(201); // Created, no body (WORK document)
  }
  if (path === '/ES/Assets' && (method === 'GET' || method === 'HEAD')) {
    // An array whose items carry their id.
    return list(
      [...assets.entries()].sort((a, b) => a[0] - b[0]),
      (page) => page.map(([id, a]) => ({ id, ...a })),
    );
  }
  if ((m = /^\/ES\/Assets\/(\d+)$/.exec(path)) && method === 'GET') {
    const a = assets.get(Number(m[1]));
    return a ? send(200, { id: Number(m[1]), ...a }) : error(404, 'NotFound', 'Asset not found');
  }
  if ((m = /^\/ES\/Companies\/(\d+)$/.exec(path)) && method === 'GET') {
    const c = companies.get(Number(m[1]));
    return c ? send(200, { id: Number(m[1]), ...c }) : error(404, 'NotFound', 'Company not found');
  }
  // GetResult: events and taskStages as {id, name}, as HubEx answers them.
  const asResult = (w: Record<string, unknown>) => ({
    ...w,
    events: ((w.events as number[] | undefined) ?? []).map((id) => ({
      id,
      name: events.find((e) => e.id === id)?.code ?? `Event ${id}`,
    })),
    taskStages: ((w.taskStages as number[] | undefined) ?? []).map((id) => ({ id, name: `Stage ${id}` })),
  });
  if (path === '/MSG/Webhooks' && (method === 'GET' || method === 'HEAD')) {
    // A map keyed by id, as the MSG document says, of ListResult: id, name, isActive,
    // callsRemaining and lastCall (completed, exception) only; the uri, events and stages come
    // from GET /MSG/Webhooks/{id}.
    const all = [...webhooks.values()].map((w) => [w.id as number, w] as const).sort((a, b) => a[0] - b[0]);
    const listResult = (w: Record<string, unknown>) => {
      const last = w.lastCall as Record<string, unknown> | null | undefined;
      return {
        id: w.id,
        name: w.name,
        isActive: w.isActive,
        callsRemaining: w.callsRemaining,
        lastCall: last ? { completed: last.completed ?? null, exception: last.exception ?? null } : null,
      };
    };
    return list(all, (page) => Object.fromEntries(page.map(([id, w]) => [String(id), listResult(w)])));
  }
  if (path === '/MSG/Webhooks' && method === 'POST') {
    if (!Array.isArray(body)) return error(409, 'InvalidData', 'Expected an array of webhooks');
    const saved = (body as Record<string, unknown>[]).map((w) => {
      const id = typeof w.id === 'number' ? w.id : s.nextWebhookID();
      const merged = { ...webhooks.get(id), ...w, id, callsRemaining: s.webhookCallBudget, lastCall: null };
      webhooks.set(id, merged);
      return id;
    });
    return send(201, saved); // the ids, as HubEx answers (MSG document: 201, number[])
  }
  if ((m = /^\/MSG\/Webhooks\/(\d+)$/.exec(path))) {
    const id = Number(m[1]);
    if (!webhooks.has(id)) return error(404, 'NotFound', 'Webhook not found');
    if (method === 'GET') return send(200, asResult(webhooks.get(id)!));
    if (method === 'DELETE') {
      webhooks.delete(id);
      return send(202);
    }
  }
  if ((m = /^\/MSG\/Webhooks\/(activate|deactivate)\/(\d+)$/.exec(path)) && method === 'PUT') {
    const w = webhooks.get(Number(m[2]));
    if (!w) return error(404, 'NotFound', 'Webhook not found');
    w.isActive = m[1] === 'activate';
    if (w.isActive) w.callsRemaining = s.webhookCallBudget; // a new budget of failed calls
    return send(202);
  }
  if (path === '/COMMON/Events' && (method === 'GET' || method === 'HEAD'))
    return list(
      events.map((e) => [e.id, e] as const),
      (page) => page.map(([, e]) => e),
    );
  return error(404, 'NotFound', `No such endpoint: ${method} ${path}`);

  /** A date query parameter: undefined when absent, null when it is not a date. */
  function dateParam(name: string): number | undefined | null {
    const v = r.query.get(name);
    if (v === null) return undefined;
    const at = Date.parse(v);
    return Number.isNaN(at) ? null : at;
  }

  /** Range / Content-Range as HubEx does it; `shape` turns a page of [id, item] into the answer. */
  function list<V>(all: readonly (readonly [number, V])[], shape: (page: (readonly [number, V])[]) => unknown): void {
    const total = all.length;
    const range = /^items=(\d+)-(\d+)$/.exec(r.range ?? '');
    if (method === 'HEAD') return send(200, undefined, { 'content-range': `items=${total ? 1 : 0}-${total}/${total}` });
    if (!range) return send(200, shape(all.slice(0, LIST_CUT))); // silently cut, no Content-Range
    const from = Math.max(1, Number(range[1])); // items=0-49 is clamped to 1
    const till = Math.min(total, Number(range[2]), pageCap ? from + pageCap - 1 : Number.POSITIVE_INFINITY);
    const page = from > till ? [] : all.slice(from - 1, till);
    return send(206, shape([...page]), { 'content-range': page.length ? `items=${from}-${till}/${total}` : `items */${total}` });
  }
}
