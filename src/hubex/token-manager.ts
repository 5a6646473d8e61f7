// HubEx access tokens (../shared/HUBEX.md, "Authentication"): a service token buys an access
// token (POST /AUTHZ/AccessTokens {serviceToken}); while that is valid, a refresh token is taken
// (POST /AUTHZ/RefreshTokens), and later access tokens come from it ({refreshJwt}), falling back
// to the service token when that fails. Renewal happens ahead of expiry, one at a time however
// many calls wait for it. No token ever reaches a log.
import { HubexConfigError } from './errors.js';
import type { Logger } from 'pino';

/** What HubEx answers to AccessTokens and RefreshTokens (JwtResultBase). */
export interface JwtResult {
  readonly access_token?: string | null;
  readonly refresh_token?: string | null;
  readonly expires_in?: number | null;
  readonly jwtValidTill?: string | null;
}

/** An anonymous or bearer POST to AUTHZ, answering the parsed body; throws HubexApiError. */
export type AuthCall = (path: '/AUTHZ/AccessTokens' | '/AUTHZ/RefreshTokens', body: object, bearer?: string) => Promise<JwtResult>;

export interface TokenManagerOptions {
  readonly serviceToken?: string | undefined;
  /** A ready access token, used as it is (no renewal). */
  readonly accessToken?: string | undefined;
  readonly call: AuthCall;
  /** Renew this long before expiry. Default 2 minutes. */
  readonly marginMs?: number;
  readonly log?: Logger | undefined;
  readonly now?: () => number;
  /** Told of each renewal (for the metrics): how it was done, and whether it worked. */
  readonly onRenewal?: (how: 'service' | 'refresh', ok: boolean) => void;
}

/** Without expires_in or jwtValidTill, assume HubEx's usual 30 minutes. */
const DEFAULT_LIFETIME_MS = 30 * 60_000;

export class TokenManager {
  readonly #o: TokenManagerOptions & { marginMs: number; now: () => number };
  #access: string | undefined;
  #expiresAt = 0;
  #refresh: string | undefined;
  #renewing: Promise<string> | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(options: TokenManagerOptions) {
    this.#o = { marginMs: 120_000, now: Date.now, ...options };
    if (options.accessToken && !options.serviceToken) {
      this.#access = options.accessToken;
      this.#expiresAt = Number.POSITIVE_INFINITY;
    }
  }

  /** Whether a 401 can be cured by a renewal (not with a fixed access token). */
  get canRenew(): boolean {
    return this.#o.serviceToken !== undefined;
  }

  /** The current access token when it is not about to expire (no wait); undefined otherwise. */
  current(): string | undefined {
    return this.#access && this.#o.now() < this.#expiresAt - this.#o.marginMs ? this.#access : undefined;
  }

  /** A valid access token: the current one, or a fresh one when it is about to expire. */
  async get(): Promise<string> {
    if (this.#access && this.#o.now() < this.#expiresAt - this.#o.marginMs) return this.#access;
    return this.renew();
  }

  /**
   * Renews now (one renewal in flight; every caller waits for the same one). `rejected` is the
   * token a 401 refused: when another call already replaced it, that replacement is returned.
   */
  renew(rejected?: string): Promise<string> {
    if (rejected !== undefined && this.#access !== undefined && this.#access !== rejected) return Promise.resolve(this.#access);
    if (!this.canRenew) {
      if (this.#access) return Promise.resolve(this.#access);
      // A client made without a token (what handlers get when none is set): each call fails, clearly.
      return Promise.reject(new HubexConfigError());
    }
    this.#renewing ??= this.#doRenew().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async #doRenew(): Promise<string> {
    const log = this.#o.log;
    if (this.#refresh) {
      try {
        const r = await this.#o.call('/AUTHZ/AccessTokens', { refreshJwt: this.#refresh });
        this.#o.onRenewal?.('refresh', true);
        return this.#take(r);
      } catch (err) {
        this.#o.onRenewal?.('refresh', false);
        log?.warn({ err: { message: (err as Error).message } }, 'HubEx refused the refresh token; using the service token');
        this.#refresh = undefined;
      }
    }
    try {
      const r = await this.#o.call('/AUTHZ/AccessTokens', { serviceToken: this.#o.serviceToken });
      this.#o.onRenewal?.('service', true);
      return this.#take(r);
    } catch (err) {
      this.#o.onRenewal?.('service', false);
      throw err;
    }
  }

  #take(r: JwtResult): string {
    if (!r.access_token) throw new Error('HubEx answered AccessTokens without an access_token');
    const now = this.#o.now();
    const fromValidTill = r.jwtValidTill ? Date.parse(r.jwtValidTill) : Number.NaN;
    this.#expiresAt =
      typeof r.expires_in === 'number' && r.expires_in > 0
        ? now + r.expires_in * 1000
        : Number.isFinite(fromValidTill)
          ? fromValidTill
          : now + DEFAULT_LIFETIME_MS;
    this.#access = r.access_token;
    if (r.refresh_token) this.#refresh = r.refresh_token;
    // Take a refresh token while this access token is valid: RefreshTokens answers 401 later.
    else if (!this.#refresh) void this.#takeRefreshToken(r.access_token);
    this.#o.log?.debug({ expiresInMs: this.#expiresAt - now }, 'HubEx access token renewed');
    return r.access_token;
  }

  #takeRefreshToken(access: string): Promise<void> {
    this.#refreshing ??= this.#o
      .call('/AUTHZ/RefreshTokens', {}, access)
      .then((r) => {
        if (r.refresh_token) this.#refresh = r.refresh_token;
      })
      .catch((err: unknown) => {
        // Not fatal: the service token still works.
        this.#o.log?.warn({ err: { message: (err as Error).message } }, 'could not take a HubEx refresh token');
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /** For tests: resolves once a refresh token request in flight is done. */
  settled(): Promise<void> {
    return this.#refreshing ?? Promise.resolve();
  }
}
