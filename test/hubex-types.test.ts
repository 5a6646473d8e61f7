// The typed API, checked by the type checker (npm run typecheck, part of CI): paths, parameters,
// bodies and results come from HubEx's OpenAPI documents.
import { expectTypeOf, it } from 'vitest';
import type { HubexClient, PathsWith, TaskDetails } from '../src/hubex/client.js';

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
  };
  expectTypeOf(check).toBeFunction();
});
