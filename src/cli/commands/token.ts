// `token`: the webhook URL to register in HubEx, one per webhook token.
import { resolveWebhookTokens } from '../../webhook-tokens.js';
import { parse } from '../args.js';
import { readConfig } from '../environment.js';
import { json, out } from '../output.js';

export function token(args: string[]): number {
  const { values } = parse(args);
  const c = readConfig();
  const { tokens, generatedFile } = resolveWebhookTokens(c);
  const base = c.publicUrl ?? `http://localhost:${c.port}`;
  const urls = tokens.map((t) => `${base}/hooks/hubex/${t}`);
  if (values.json) json({ urls, generated: generatedFile !== undefined });
  else {
    for (const u of urls) out(u);
    if (!c.publicUrl) process.stderr.write('(set PUBLIC_URL to the address HubEx reaches to print the URL to register)\n');
  }
  return 0;
}
