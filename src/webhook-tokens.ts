// Webhook tokens: the shared secrets in the URL HubEx calls. Several are valid at once, for
// rotation; comparison is constant-time; when none is configured, one is generated and kept.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';

export const TOKEN_FILE = 'webhook-token';

export interface ResolvedTokens {
  readonly tokens: readonly string[];
  /** The file the token was read from or written to, when it was generated rather than configured. */
  readonly generatedFile?: string;
}

/** WEBHOOK_TOKENS when set; otherwise the token kept in DATA_DIR, generated on first start. */
export function resolveWebhookTokens(config: Pick<Config, 'webhookTokens' | 'dataDir'>): ResolvedTokens {
  if (config.webhookTokens) return { tokens: config.webhookTokens };
  const file = join(config.dataDir, TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return { tokens: [token], generatedFile: file };
  }
  const token = randomBytes(24).toString('base64url');
  try {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch (err) {
    throw new Error(
      `Cannot keep a generated webhook token in ${file} (${(err as Error).message}); set WEBHOOK_TOKENS or make DATA_DIR writable.`,
      { cause: err },
    );
  }
  return { tokens: [token], generatedFile: file };
}

// One-shot hash: a third of the cost of createHash().update().digest() for a short string.
const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

/** Checks candidate tokens against the valid ones in constant time (per candidate). */
export class TokenVerifier {
  readonly #digests: readonly Buffer[];

  constructor(tokens: readonly string[]) {
    if (tokens.length === 0) throw new TypeError('at least one webhook token is required');
    this.#digests = tokens.map(digest);
  }

  /** Whether the candidate equals one of the tokens. Hashing first makes lengths equal; no early exit. */
  verify(candidate: string): boolean {
    const d = digest(candidate);
    let ok = false;
    for (const valid of this.#digests) ok = timingSafeEqual(d, valid) || ok;
    return ok;
  }
}
