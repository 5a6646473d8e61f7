// `fake-hubex`: the fake HubEx of 'hubex-router/testing' as a server, for developing handlers
// without a HubEx account. It prints its address and the variables that point a router at it,
// seeds a few tasks and assets, and prints each call it answers until stopped.
import { startFakeHubex } from '../../testing/fake-hubex.js';
import { num, parse } from '../args.js';
import { UsageError } from '../errors.js';
import { out } from '../output.js';

/** The service token the fake accepts unless --token says otherwise: fixed, so that a .env can name it. */
export const FAKE_SERVICE_TOKEN = 'fake-hubex-service-token';

export async function fakeHubex(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { port: { type: 'string' }, token: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`fake-hubex takes no arguments, got "${positionals[0]}"`);
  const port = num(values.port, 'port') ?? 4010;
  if (port > 65535) throw new UsageError('--port takes a port number, 0 to 65535');
  const token = typeof values.token === 'string' ? values.token : FAKE_SERVICE_TOKEN;
  if (!/^[\x21-\x7e]{8,200}$/.test(token)) throw new UsageError('--token takes 8 to 200 printable characters');
  let fake;
  try {
    fake = await startFakeHubex({
      port,
      serviceToken: token,
      maxCalls: 1000,
      onCall: values.json
        ? (c) => out(JSON.stringify({ method: c.method, path: c.path, status: c.status, auth: c.auth }))
        : (c) =>
            out(`${c.method} ${c.path}${Object.keys(c.query).length ? `?${new URLSearchParams(c.query).toString()}` : ''} -> ${c.status}`),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new Error(`port ${port} is taken; choose another with --port`, { cause: err });
    throw err;
  }
  for (let id = 1; id <= 3; id++) fake.tasks.set(id, { title: `Sample task ${id}`, taskStageID: 1, assetID: 100 + id });
  for (let id = 101; id <= 103; id++) fake.assets.set(id, { id, name: `Sample asset ${id}` });
  const lines = [
    `fake HubEx listening at ${fake.url} (tasks 1-3, assets 101-103; every call is printed below)`,
    '',
    'Point a router at it (in another terminal, or in .env):',
    `  HUBEX_BASE_URL=${fake.url}`,
    `  HUBEX_SERVICE_TOKEN=${token}`,
    '',
    'then post a sample webhook to that router: hubex-router send task.created --task 1',
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await fake.close();
  return 0;
}
