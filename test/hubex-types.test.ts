// The typed API, checked by the type checker (npm run typecheck, part of CI): paths, parameters,
// bodies and results come from HubEx's OpenAPI documents.
import { expectTypeOf, it } from 'vitest';
import type { EventCatalogueItem, HubexClient, PathsWith, TaskDetails, TaskFilter, TaskListItem } from '../src/hubex/client.js';

it('types requests by path and method', () => {
  expectTypeOf<'/WORK/Tasks/{taskID}'>().toMatchTypeOf<PathsWith<'GET'>>();
  expectTypeOf<'/WORK/Tasks/{taskID}/conversation'>().toMatchTypeOf<PathsWith<'POST'>>();
  expectTypeOf<'/MSG/Webhooks/activate/{id}'>().toMatchTypeOf<PathsWith<'PUT'>>();
  expectTypeOf<'/COMMON/Events'>().toMatchTypeOf<PathsWith<'GET'>>();
  expectTypeOf<'/TSTG/Branches'>().toMatchTypeOf<PathsWith<'GET'>>();
  expectTypeOf<'/AUTHZ/AccessTokens'>().toMatchTypeOf<PathsWith<'POST'>>();
  // a path with no POST, and a path that does not exist
  expectTypeOf<'/WORK/Tasks/{taskID}/conversation'>().not.toMatchTypeOf<PathsWith<'GET'>>();
  expectTypeOf<'/WORK/NoSuchThing'>().not.toMatchTypeOf<PathsWith<'GET'>>();

  type GetTask = ReturnType<HubexClient['request']>;
  expectTypeOf<GetTask>().toMatchTypeOf<Promise<unknown>>();
  expectTypeOf<Awaited<ReturnType<HubexClient['work']['getTask']>>>().toEqualTypeOf<TaskDetails>();
  expectTypeOf<TaskDetails>().toHaveProperty('taskStage');

  const check = (c: HubexClient) => {
    void c.request('GET', '/WORK/Tasks/{taskID}', { params: { taskID: 5 }, query: { includeSchedule: true } });
    // @ts-expect-error the parameter is taskID, not id
    void c.request('GET', '/WORK/Tasks/{taskID}', { params: { id: 5 } });
    // @ts-expect-error a message needs text, not a number
    void c.request('POST', '/WORK/Tasks/{taskID}/conversation', { params: { taskID: 5 }, body: { message: 5 } });
    // @ts-expect-error GET has no body here
    void c.request('GET', '/NOPE/Nothing');
    // Filters are typed from the document, .NET type names (int16, datetime) and "true"/"false" included.
    void c.request('GET', '/WORK/Tasks', { query: { taskStageID: 4, isDeleted: false, creationFrom: '2026-11-01T00:00:00Z' } });
    void c.work.listTasks({ taskStageID: 4, assetID: 5501, isClosed: false });
    // @ts-expect-error HubEx would silently ignore a misspelt filter and answer every task
    void c.work.listTasks({ taskStageId: 4 });
    // @ts-expect-error paging is done with Range, not offset
    void c.work.listTasks({ offset: '10' });
  };
  expectTypeOf<Parameters<HubexClient['work']['listTasks']>[0]>().toEqualTypeOf<TaskFilter | undefined>();
  expectTypeOf<TaskFilter['taskStageID']>().toEqualTypeOf<number | undefined>();
  expectTypeOf<TaskFilter['isDeleted']>().toEqualTypeOf<boolean | undefined>();

  // List items from the path: a map's values with their key as id, an array's elements as they are.
  // Only its type is used: an instantiation expression needs a value.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const listOf = <P extends Parameters<HubexClient['list']>[0]>(c: HubexClient, p: P) => c.list(p);
  type Item<P extends Parameters<HubexClient['list']>[0]> = ReturnType<typeof listOf<P>>;
  expectTypeOf<Item<'/WORK/Tasks'>>().toEqualTypeOf<AsyncIterableIterator<TaskListItem>>();
  expectTypeOf<Item<'/COMMON/Events'>>().toEqualTypeOf<AsyncIterableIterator<EventCatalogueItem>>();
  expectTypeOf<Awaited<ReturnType<HubexClient['common']['events']>>>().toEqualTypeOf<EventCatalogueItem[]>();
  expectTypeOf<EventCatalogueItem>().toHaveProperty('code');
  expectTypeOf(check).toBeFunction();
});
