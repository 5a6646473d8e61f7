// Starts the real router as a child process (node --import tsx src/main.ts), on 127.0.0.1 with
// PORT=0, waits until it listens and learns its port. For tests that need a process of its own:
// kill -9, another user, a read-only folder. Every child is killed when its test ends.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

/** The repository root: the child's cwd, so that `--import tsx` and src/main.ts resolve. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const ROUTER_TOKEN = 'spawned-router-token-0123456789';

export interface SpawnRouterOptions {
  /** DATA_DIR of the child (required: each test brings its own folder). */
  readonly dataDir: string;
  /** Added over the defaults (PORT=0, HOST=127.0.0.1, WEBHOOK_TOKENS, LOG_LEVEL=info, ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run the child as this user / group (needs root). */
  readonly uid?: number;
  readonly gid?: number;
  /** The node arguments that start it, and where; default `--import tsx src/main.ts` in the repository. */
  readonly command?: { readonly args: readonly string[]; readonly cwd: string };
  /** How long to wait for "listening" before giving up. Default 20 s. */
  readonly startTimeoutMs?: number;
  /** Kill the child (SIGKILL) when the current test finishes. Default true; needs to be called inside a test. */
  readonly killOnTestEnd?: boolean;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedRouter {
  readonly port: number;
  readonly child: ChildProcess;
  readonly pid: number;
  /** http://127.0.0.1:PORT */
  readonly base: string;
  /** The webhook URL for a token (the default token when none is given). */
  url(token?: string): string;
  /** Everything the child wrote so far (the JSON log). */
  readonly stdout: string;
  /** Everything the child wrote so far on stderr (the banner, start-up failures). */
  readonly stderr: string;
  /** Sends a signal (default SIGKILL) and resolves when the child has exited. Safe to call twice. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
  /** Resolves when the child exits, whatever the reason. */
  readonly exited: Promise<Exit>;
}

/** Children still running, killed on process exit as a last resort. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

const MAX_CAPTURE = 8 * 1024 * 1024;

const BANNER = /hubex-router is listening on (.+):(\d+) \(/;
const LOG_LINE = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/;

export class RouterStartError extends Error {
  override readonly name = 'RouterStartError';
}

/** The environment the child gets: nothing inherited from the test process but PATH and locale. */
function childEnv(opts: SpawnRouterOptions): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: opts.dataDir,
    WEBHOOK_TOKENS: ROUTER_TOKEN,
    QUEUE: 'sqlite',
    LOG_LEVEL: 'info',
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  if (process.env.LANG) env.LANG = process.env.LANG;
  return { ...env, ...opts.env };
}

export async function spawnRouter(opts: SpawnRouterOptions): Promise<SpawnedRouter> {
  const child = spawn(process.execPath, opts.command?.args ?? ['--import', 'tsx', 'src/main.ts'], {
    cwd: opts.command?.cwd ?? REPO_ROOT,
    env: childEnv(opts),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  running.add(child);

  let stdout = '';
  let stderr = '';
  const append = (prev: string, chunk: Buffer) => {
    const next = prev + chunk.toString('utf8');
    return next.length > MAX_CAPTURE ? next.slice(next.length - MAX_CAPTURE) : next;
  };

  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };

  if (opts.killOnTestEnd ?? true) {
    try {
      onTestFinished(async () => {
        await kill('SIGKILL');
      });
    } catch {
      // Not inside a test: the caller kills it (and process exit does, at the latest).
    }
  }

  const port = await new Promise<number>((resolve, reject) => {
    const timeoutMs = opts.startTimeoutMs ?? 20_000;
    let done = false;
    const finish = (err: Error | undefined, p?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        void kill('SIGKILL');
        reject(err);
      } else resolve(p!);
    };
    const timer = setTimeout(
      () => finish(new RouterStartError(`the router did not listen within ${timeoutMs} ms\n${describe()}`)),
      timeoutMs,
    );
    const describe = () => `--- stderr ---\n${stderr.slice(-4000)}\n--- stdout ---\n${stdout.slice(-4000)}`;
    const look = () => {
      const m = BANNER.exec(stderr) ?? LOG_LINE.exec(stdout);
      if (m) finish(undefined, Number(m.at(-1)));
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout = append(stdout, chunk);
      look();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = append(stderr, chunk);
      look();
    });
    child.once('error', (err) => finish(new RouterStartError(`cannot start the router: ${err.message}\n${describe()}`)));
    void exited.then(({ code, signal }) =>
      finish(new RouterStartError(`the router exited before listening (code ${code}, signal ${signal})\n${describe()}`)),
    );
  });

  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    child,
    pid: child.pid!,
    base,
    url: (token = ROUTER_TOKEN) => `${base}/hooks/hubex/${token}`,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    kill,
    exited,
  };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read whatever the answer holds
  readonly json: any;
}

/**
 * One HTTP request with node:http (loopback only), bounded by a timeout. Rejects with the socket
 * error (err.code ECONNRESET, ECONNREFUSED, ...) when no complete answer came back.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; body?: string; headers?: http.OutgoingHttpHeaders; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1') throw new Error(`httpRequest is for 127.0.0.1 only, not ${u.hostname}`);
    const headers: http.OutgoingHttpHeaders = { ...opts.headers };
    if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = Buffer.byteLength(opts.body);
    }
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
        headers,
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
        res.on('end', () => {
          if (!res.complete) {
            reject(Object.assign(new Error('response incomplete'), { code: 'ECONNRESET' }));
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The user `nobody` (or another name) from /etc/passwd, when there is one. */
export function lookupUser(name = 'nobody'): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}
