// 'hubex-router/testing': what integrators test their handlers with. A fake HubEx that behaves
// as the real API does (a real HTTP server), one handler run for a unit test, and a whole router
// in the test process for an integration test.
export { createTestRouter, type TestRouter, type TestRouterOptions } from './test-router.js';
export { runHandler, type RunHandlerOptions, type RunHandlerResult } from './run-handler.js';
export { startFakeHubex, type FakeHubex, type FakeHubexOptions, type FakeTask, type Fault, type RecordedCall } from './fake-hubex.js';
