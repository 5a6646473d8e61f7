// Shared by the benchmark scripts: child servers on loopback, CPU use from /proc, figures.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const HOST = '127.0.0.1';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const log = (line = '') => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// Settings: environment variables, or flags named after them (BENCH_LAT_ROUNDS=2 or --lat-rounds=2)

export const QUICK = process.argv.includes('--quick');

export function setting(name: string, fallback: string): string {
  const flag = `--${name
    .replace(/^BENCH_/, '')
    .toLowerCase()
    .replace(/_/g, '-')}=`;
  const arg = process.argv.find((a) => a.startsWith(flag));
  if (arg) return arg.slice(flag.length);
  const env = process.env[name];
  return env !== undefined && env.trim() !== '' ? env.trim() : fallback;
}

export function num(name: string, full: number, quick: number): number {
  const v = Number(setting(name, String(QUICK ? quick : full)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number >= 0`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The payload

export const TOKEN = 'bench-token-0123456789abcdef';
export const PATH = `/hooks/hubex/${TOKEN}`;

// A HubEx-like asset event. CorrelationID carries the unique part; it is not one of the fields
// the router takes as the notification's own id, so the router dedups by content hash (sha256 of
// the canonical JSON), the costlier of its two paths and the one HubEx's undocumented body gets.
export const ID = '[<id>]'; // autocannon puts a 33-character hyperid here
export const TEMPLATE = JSON.stringify({
  EventID: 41,
  EventName: 'AssetUpdated',
  AssetID: 550_123,
  TenantID: 77,
  CompanyID: 1204,
  LocationID: 88_113,
  AssetTypeID: 12,
  AssetName: 'Kaeltemaschine Halle 3 / Linie B',
  SerialNumber: 'KM-2019-00451-B',
  Manufacturer: 'Frigotec GmbH',
  Status: 'active',
  ChangedFields: ['Status', 'NextMaintenanceDate', 'ResponsibleUserID'],
  NextMaintenanceDate: '2025-07-01T00:00:00Z',
  ResponsibleUserID: 3127,
  ChangedBy: { UserID: 311, Name: 'J. Becker', Email: 'j.becker@example.com' },
  EventDate: '2025-06-12T08:14:03.512Z',
  CorrelationID: ID,
  Url: 'https://api.hubex.de/api/v1/Assets/550123',
});
let uniq = 0;
export const uniqueBody = (tag: string): string =>
  // Same length as autocannon's hyperid, so the bodies are the same size in both parts.
  TEMPLATE.replace(ID, `${tag}-${process.pid}-${(uniq++).toString(36).padStart(33 - tag.length - String(process.pid).length - 2, '0')}`);

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Server<N extends string = string> {
  readonly name: N;
  readonly port: number;
  readonly child: ChildProcess;
  stderr: string;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, HOST, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => res(port));
    });
  });
}

export async function start<N extends string>(
  name: N,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdout: number | 'ignore',
): Promise<Server<N>> {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, PORT: String(port), HOST },
    stdio: ['ignore', stdout, 'pipe'],
  });
  const server: Server<N> = { name, port, child, stderr: '' };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (server.stderr.length < 20_000) server.stderr += d;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during start (${child.exitCode ?? child.signalCode}):\n${server.stderr}`);
    }
    if (await canConnect(port)) return server;
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${HOST}:${port} within 30 s:\n${server.stderr}`);
    await sleep(100);
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = net.connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => res(false));
  });
}

export async function stop(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where there is none. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const f0 = (n: number) => (Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
export const f1 = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(1));
export const f2 = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(2));
export const pad = (s: string, n: number) => s.padStart(n);
