// `send`: posts a payload (a file, stdin, or a built-in sample) to a running router, as HubEx would.
import { readFileSync } from 'node:fs';
import { OperationError } from '../../delivery/operations.js';
import { resolveWebhookTokens } from '../../webhook-tokens.js';
import { num, parse, type Values } from '../args.js';
import { readConfig } from '../environment.js';
import { UsageError } from '../errors.js';
import { fixtureFor, FIXTURES } from '../fixtures.js';
import { out } from '../output.js';

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    url: { type: 'string' },
    asset: { type: 'string' },
    task: { type: 'string' },
    token: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('send takes one FILE, "-" for stdin, or an event name');
  const body = payload(positionals[0]!, values);
  const c = readConfig();
  const secret = (values.token as string | undefined) ?? resolveWebhookTokens(c).tokens[0]!;
  const base = ((values.url as string | undefined) ?? `http://127.0.0.1:${c.port}`).replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/hooks/hubex/${encodeURIComponent(secret)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new OperationError(
      `No router answered at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is it running? Use --url to point elsewhere.`,
    );
  }
  const text = await res.text();
  // --json passes the router's own JSON answer through.
  if (values.json) out(text);
  else out(`${res.status} ${res.statusText}: ${text}`);
  return res.ok ? 0 : 1;
}

/** The body to post: stdin for "-", a sample for an event name, else the file of that name. */
function payload(what: string, values: Values): string {
  if (what === '-') return readFileSync(0, 'utf8');
  if (Object.hasOwn(FIXTURES, what))
    return JSON.stringify(fixtureFor(what, { asset: num(values.asset, 'asset'), task: num(values.task, 'task') }));
  try {
    return readFileSync(what, 'utf8');
  } catch (err) {
    throw new OperationError(
      `Cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a file, "-", or one of ${Object.keys(FIXTURES).join(', ')}.`,
    );
  }
}
