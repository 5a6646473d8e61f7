// docs/deploy.md's nginx block, run in a real nginx in front of the real router with the settings
// the doc recommends (TRUST_PROXY=127.0.0.1): a client cannot choose its address with
// X-Forwarded-For, and the webhook token reaches neither nginx's logs nor the router's. The block
// is read from the doc, so that the two cannot drift. Without nginx the file is skipped (one line
// says so); under CI it fails instead.
//
// The client must not share the proxy's address, or TRUST_PROXY=127.0.0.1 would trust it too:
// it connects from 127.0.0.2 (HubEx's stand-in) or 127.0.0.3 (a stranger), still to 127.0.0.1.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { httpRequest, ROUTER_TOKEN, type SpawnedRouter, spawnRouter } from './support/spawn-router.js';
import { waitFor } from './support/wait.js';

const NGINX = process.env.NGINX ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');
const hasNginx = spawnSync(NGINX, ['-v'], { stdio: 'ignore' }).status === 0;
if (!hasNginx) {
  if (process.env.CI) throw new Error(`${NGINX} is not installed; CI runs test/deploy-nginx.test.ts (Debian's package nginx)`);
  process.stdout.write(`nginx not found: skipping test/deploy-nginx.test.ts; install it with: apt-get install nginx\n`);
}

const HUBEX = '127.0.0.2';
const STRANGER = '127.0.0.3';
let calls = 0;
/** A new event each time (the same body twice would be a duplicate: 200, not 202). */
const event = () => JSON.stringify({ EventID: 40, AssetID: 1, Note: `call ${++calls}` });
const DOC = readFileSync(new URL('../docs/deploy.md', import.meta.url), 'utf8');

/** The doc's first nginx block: the log format and the server block. */
function docBlock(): string {
  const block = /```nginx\n([\s\S]*?)```/.exec(DOC)?.[1];
  if (!block) throw new Error('docs/deploy.md has no ```nginx block');
  return block;
}

/** One textual change to the doc's block; fails when the doc no longer has what it changes. */
function change(text: string, from: RegExp | string, to: string): string {
  const changed = typeof from === 'string' ? text.replaceAll(from, to) : text.replace(from, to);
  if (changed === text) throw new Error(`docs/deploy.md's nginx block no longer has ${String(from)}`);
  return changed;
}

interface Nginx {
  readonly dir: string;
  /** The webhook URL through nginx. */
  url(token?: string): string;
  /** Everything nginx wrote in its folder so far (access and error logs), by file name. */
  logs(): Record<string, string>;
}

/**
 * The doc's block in a real nginx: on a free 127.0.0.1 port without TLS, its logs in a temporary
 * folder, proxying to the router's port. `edit` changes the block further (a variant of it).
 */
async function startNginx(routerPort: number, edit: (block: string) => string = (b) => b): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'hubex-nginx-'));
  // Run as root, nginx's workers are `nobody`: they must reach the body buffer folders.
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    let block = docBlock();
    block = change(block, /listen 443 ssl;/, `listen 127.0.0.1:${port};`);
    block = change(block, /^\s*ssl_certificate(_key)? .*\n/gm, '');
    block = change(block, '/var/log/nginx/', `${dir}/`);
    block = change(block, 'http://127.0.0.1:3000', `http://127.0.0.1:${routerPort}`);
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`).join('\n')}
${edit(block)}
}
`,
    );
    const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`, '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: the master and its workers end together
    });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = () => stopGroup(child, exited);
    process.once('exit', () => killGroup(child));
    onTestFinished(stop);
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (child.exitCode === null && (await accepts(port))) {
      return {
        dir,
        url: (token = ROUTER_TOKEN) => `http://127.0.0.1:${port}/hooks/hubex/${token}`,
        logs: () =>
          Object.fromEntries(
            readdirSync(dir)
              .filter((f) => f.endsWith('.log'))
              .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
          ),
      };
    }
    await stop();
    const error = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
    // Another process may take the free port before nginx binds it: then try another.
    if (tries >= 3 || !/Address already in use/.test(error + output)) {
      throw new Error(`nginx did not start on port ${port}:\n${output}\n${error}`);
    }
  }
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** SIGTERM (nginx's fast shutdown), then SIGKILL to the whole group after 5 s. */
async function stopGroup(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => killGroup(child), 5000);
  await exited;
  clearTimeout(timer);
  killGroup(child); // a worker left behind, if any
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

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(500, () => sock.destroy());
    sock.once('error', () => sock.destroy());
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('close', () => resolve(false));
  });
}

/** An agent whose connections leave from `address` (any 127.x address is this host's on Linux). */
function from(address: string): http.Agent {
  const agent = new http.Agent({ localAddress: address });
  onTestFinished(() => agent.destroy());
  return agent;
}

/** A webhook call through nginx from `address`, with the X-Forwarded-For the client chooses. */
async function call(nginx: Nginx, address: string, xff?: string) {
  const headers = xff === undefined ? {} : { 'x-forwarded-for': xff };
  return (await httpRequest(nginx.url(), { body: event(), headers, agent: from(address), timeoutMs: 5000 })).status;
}

/** The router's one line per request, parsed. */
function requestLines(router: SpawnedRouter): { status: number; ip: string; url: string }[] {
  return router.stdout
    .split('\n')
    .filter((l) => l.includes('"status":'))
    .map((l) => JSON.parse(l) as { status: number; ip: string; url: string });
}

/** The router as docs/deploy.md runs it with the proxy on this host (spawnRouter's HOST is 127.0.0.1). */
async function router(env: Record<string, string> = {}): Promise<SpawnedRouter> {
  if (!DOC.includes('`TRUST_PROXY=127.0.0.1`')) throw new Error('docs/deploy.md no longer recommends TRUST_PROXY=127.0.0.1');
  const dataDir = mkdtempSync(join(tmpdir(), 'hubex-nginx-router-'));
  onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
  return spawnRouter({ dataDir, env: { TRUST_PROXY: '127.0.0.1', LOG_EVENTS: 'false', ...env } });
}

// nginx replaces the client's X-Forwarded-For (the doc's block) or appends to it (the variant the
// doc gives for a balancer in front): either way the client must not choose its address.
const VARIANTS: readonly [string, (block: string) => string][] = [
  ['nginx replacing X-Forwarded-For (the doc)', (b) => b],
  ['nginx appending to X-Forwarded-For', (b) => change(b, 'X-Forwarded-For $remote_addr;', 'X-Forwarded-For $proxy_add_x_forwarded_for;')],
];

describe.skipIf(!hasNginx)('behind the nginx of docs/deploy.md', () => {
  it('a stranger naming an allowed address in X-Forwarded-For gets 403, and is logged with its own address', async () => {
    const r = await router({ ALLOWED_IPS: HUBEX });
    for (const [variant, edit] of VARIANTS) {
      const nginx = await startNginx(r.port, edit);
      expect(await call(nginx, STRANGER, HUBEX), variant).toBe(403);
      expect(await call(nginx, STRANGER, `6.6.6.6, ${HUBEX}`), variant).toBe(403);
      expect(await call(nginx, HUBEX), variant).toBe(202);
    }
    const lines = await waitFor(
      () => requestLines(r),
      (l) => l.length === 6,
      { what: 'six request lines' },
    );
    expect(lines.map((l) => [l.status, l.ip])).toEqual([
      [403, STRANGER],
      [403, STRANGER],
      [202, HUBEX],
      [403, STRANGER],
      [403, STRANGER],
      [202, HUBEX],
    ]);
  });

  it('RATE_LIMIT_MAX counts the real client, whatever X-Forwarded-For it sends', async () => {
    const r = await router({ RATE_LIMIT_MAX: '3' });
    for (const [i, [variant, edit]] of VARIANTS.entries()) {
      const nginx = await startNginx(r.port, edit);
      const client = `127.0.0.${10 + i}`; // a client of its own for each variant: the limit keeps counting
      const statuses = [];
      for (const xff of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '6.6.6.6, 7.7.7.7', undefined]) {
        statuses.push(await call(nginx, client, xff));
      }
      expect(statuses, variant).toEqual([202, 202, 202, 429, 429, 429]);
      // Counted per client, not on the proxy's address: another client still gets through.
      expect(await call(nginx, HUBEX), variant).toBe(202);
    }
  });

  it("a call through nginx is accepted, and its token is in neither nginx's logs nor the router's", async () => {
    const r = await router();
    const nginx = await startNginx(r.port);

    expect(await call(nginx, HUBEX)).toBe(202);

    const logs = await waitFor(nginx.logs, (l) => / 202 /.test(l['hubex.log'] ?? ''), { what: "nginx's access log line" });
    expect(logs['hubex.log']).toMatch(
      new RegExp(`^${HUBEX} \\[.+\\] "POST /hooks/hubex/\\.\\.\\." 202 \\d+ [\\d.]+ 127\\.0\\.0\\.1:${r.port} 202\\n$`),
    );
    await waitFor(
      () => requestLines(r),
      (l) => l.length === 1,
      { what: "the router's request line" },
    );
    expect(requestLines(r)[0]).toMatchObject({ status: 202, ip: HUBEX, url: '/hooks/hubex/[REDACTED]' });
    for (const [file, text] of Object.entries(logs)) expect(text, file).not.toContain(ROUTER_TOKEN);
    expect(r.stdout + r.stderr).not.toContain(ROUTER_TOKEN);
  });

  it("an oversized body gets nginx's HTML 413, the router down a 502, and neither writes the token in a log", async () => {
    const r = await router();
    const nginx = await startNginx(r.port);

    const tooLarge = await httpRequest(nginx.url(), { body: 'x'.repeat(1024 * 1024 + 1), agent: from(HUBEX), timeoutMs: 5000 });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers['content-type']).toBe('text/html');
    expect(tooLarge.text).toContain('413 Request Entity Too Large');
    expect(await postChunked(nginx.url(), HUBEX, 2 * 1024 * 1024)).toBe(413);

    await r.kill();
    expect(await call(nginx, HUBEX)).toBe(502);

    // The access log shows all three, without the token.
    const logs = await waitFor(nginx.logs, (l) => (l['hubex.log'] ?? '').split('\n').length === 4, { what: 'three access log lines' });
    expect(Object.keys(logs).sort()).toEqual(['access.log', 'error.log', 'hubex-error.log', 'hubex.log']);
    expect(logs['hubex.log']!.split('\n').map((l) => l.split(' ')[5])).toEqual(['413', '413', '502', undefined]);
    expect(logs['hubex.log']).toContain(`127.0.0.1:${r.port} 502`);
    for (const [file, text] of Object.entries(logs)) expect(text, file).not.toContain(ROUTER_TOKEN);
  });

  it("without the location's error_log line, nginx writes the token into its error log (what the line is for)", async () => {
    const closedPort = await freePort(); // nothing listens there: the router is down
    const nginx = await startNginx(closedPort, (b) => change(b, /^\s*error_log .*\n/m, ''));

    const tooLarge = await httpRequest(nginx.url(), { body: 'x'.repeat(1024 * 1024 + 1), agent: from(HUBEX), timeoutMs: 5000 });
    expect(tooLarge.status).toBe(413);
    expect(await call(nginx, HUBEX)).toBe(502);

    const logs = await waitFor(nginx.logs, (l) => (l['error.log'] ?? '').split(ROUTER_TOKEN).length >= 3, { what: 'two error lines' });
    expect(logs['error.log']).toMatch(new RegExp(`client intended to send too large body.*request: "POST /hooks/hubex/${ROUTER_TOKEN} `));
    expect(logs['error.log']).toMatch(new RegExp(`connect\\(\\) failed .*request: "POST /hooks/hubex/${ROUTER_TOKEN} `));
  });
});

/** A POST of `bytes` in chunks, without Content-Length (so nginx counts while it reads). */
function postChunked(url: string, address: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: from(address), headers: { 'content-type': 'application/json' }, timeout: 5000 });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // nginx may answer and close while the rest of the body is still being sent.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent < bytes; sent += chunk.length) req.write(chunk);
    req.end();
  });
}
