// A real redis-server for a test: on a free loopback port, with its files in a temporary folder,
// AOF on with appendfsync always (the durable set-up docs/scaling.md asks for), stopped when the
// test file ends. On a machine without redis-server the Redis tests are skipped (one line says so,
// from test/support/global-setup.ts); under CI they fail instead, since CI installs it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

/** Whether redis-server can be started here. */
export const hasRedis: boolean = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' }).status === 0;

if (!hasRedis && process.env.CI) {
  throw new Error(`${REDIS_SERVER} is not installed; CI runs the Redis tests (.ci/run installs the redis-server package)`);
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  /** Stops it: SIGTERM (a clean shutdown) or SIGKILL (a crash: only the AOF keeps the data). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and folder (after stop). */
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** `args`: more redis-server options (`['--requirepass', 'x']`). */
export async function startRedis(args: readonly string[] = []): Promise<RedisServer> {
  // The port is free when picked, but another process may take it before redis-server binds it:
  // then try another.
  for (let tries = 1; ; tries++) {
    try {
      return await startRedisOn(await freePort(), args);
    } catch (err) {
      if (tries >= 3) throw err;
    }
  }
}

async function startRedisOn(port: number, args: readonly string[]): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hubex-redis-'));
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    log = '';
    child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
        '--maxmemory-policy',
        'noeviction',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}:\n${log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };
  try {
    await start();
  } catch (err) {
    await stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  process.once('exit', () => child?.kill('SIGKILL'));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop,
    start,
    async close() {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** True when a redis-server answers PING on the port and has loaded its data. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (b) => {
      got += b.toString();
      // NOAUTH: up, with a password set (--requirepass); LOADING: still reading its AOF.
      if (got.includes('\r\n')) done(got.startsWith('+PONG') || got.startsWith('-NOAUTH'));
    });
  });
}
