// Signing in to the dashboard. The admin token is typed once into the sign-in form (a POST body,
// never a URL); the session it opens is an HttpOnly, SameSite=Strict cookie holding an expiry
// signed with a key derived from ADMIN_TOKEN: valid on every instance that has the same token,
// void once the token changes or the time passes. Each form carries a CSRF token derived from the
// session, checked on every POST besides SameSite=Strict.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'hxr_session';
export const LANG_COOKIE = 'hxr_lang';
/** How long a session lasts. */
export const SESSION_MS = 12 * 3_600_000;

export class Sessions {
  readonly #key: Buffer;

  constructor(
    adminToken: string,
    private readonly now: () => number = Date.now,
  ) {
    this.#key = createHash('sha256').update(`hubex-router dashboard session\u0000${adminToken}`).digest();
  }

  /** A new session's cookie value. */
  open(): string {
    const expires = this.now() + SESSION_MS;
    return `v1.${expires}.${this.#mac(`session:${expires}`)}`;
  }

  /**
   * Whether a cookie value is a session this key signed, not expired, and opened after
   * `openedAfter` (the last sign-out: it ends every session opened before it).
   */
  valid(value: string | undefined, openedAfter = Number.NEGATIVE_INFINITY): boolean {
    if (!value || value.length > 200) return false;
    const m = /^v1\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return false;
    const expires = Number(m[1]);
    return same(m[2]!, this.#mac(`session:${m[1]}`)) && expires > this.now() && expires - SESSION_MS >= openedAfter;
  }

  /** The CSRF token of a session: what its forms carry. */
  csrf(session: string): string {
    return this.#mac(`csrf:${session}`);
  }

  csrfValid(session: string, token: unknown): boolean {
    return typeof token === 'string' && token.length < 100 && same(token, this.csrf(session));
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('base64url');
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The cookies of a request, every value of each name (at most 4 a name); a header over 8 KiB is not read. */
export function readCookies(header: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!header || header.length > 8192) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    const values = out.get(name) ?? [];
    if (values.length < 4) values.push(part.slice(i + 1).trim());
    out.set(name, values);
  }
  return out;
}

export function cookie(name: string, value: string, o: { maxAgeSec: number; secure: boolean; httpOnly?: boolean }): string {
  return [
    `${name}=${value}`,
    'Path=/ui',
    `Max-Age=${o.maxAgeSec}`,
    'SameSite=Strict',
    ...(o.httpOnly === false ? [] : ['HttpOnly']),
    ...(o.secure ? ['Secure'] : []),
  ].join('; ');
}
