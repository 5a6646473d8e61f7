// The fake HubEx (test/support/fake-hubex.ts) as a process of its own, for bench/client.ts.
// Prints one JSON line {url, serviceToken} and serves until killed.
import { startFakeHubex } from '../src/testing/fake-hubex.js';

const hubex = await startFakeHubex({ accessTokenLifetimeSec: 3600 });
hubex.tasks.set(5, { number: 'T-5', taskStageID: 2, description: 'x'.repeat(400) });
process.stdout.write(`${JSON.stringify({ url: hubex.url, serviceToken: hubex.serviceToken })}\n`);
process.on('SIGTERM', () => void hubex.close().then(() => process.exit(0)));
