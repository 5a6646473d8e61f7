// Configuration: defaults, validation with one message naming every bad variable, .env files.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, configWarnings, loadConfig, maskUrl, readEnv, VARIABLES } from '../src/config.js';
import { tempDir } from './support/test-app.js';

describe('config', () => {
  it('has the DESIGN defaults with nothing set', () => {
    expect(loadConfig({})).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      publicUrl: undefined,
      webhookTokens: undefined,
      dataDir: resolve('./data'),
      queue: 'sqlite',
      bodyLimit: 1_048_576,
      maxBatch: 1000,
      trustProxy: false,
      logLevel: 'info',
    });
  });

  it('is frozen', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it('names every bad variable in one message, and why', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        BODY_LIMIT: '-5',
        QUEUE: 'kafka',
        PUBLIC_URL: 'hubex.example.com',
        WEBHOOK_TOKENS: 'short,also-short',
      });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems.map((p) => p.variable).sort()).toEqual(
      ['BODY_LIMIT', 'LOG_LEVEL', 'PORT', 'PUBLIC_URL', 'QUEUE', 'WEBHOOK_TOKENS'].sort(),
    );
    expect(error!.message).toMatch(/^Invalid configuration \(6 problems\):/);
    expect(error!.message).toContain('PORT: must be a whole number from 0 to 65535 (got "eighty")');
    expect(error!.message).toContain('LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")');
    expect(error!.message).toContain('QUEUE: must be sqlite or redis');
    expect(error!.message).toContain('PUBLIC_URL: must be an http:// or https:// URL');
    expect(error!.message).toContain('WEBHOOK_TOKENS: each token must be 16 to 256 characters');
  });

  it('never echoes a secret value in the message', () => {
    expect(() => loadConfig({ WEBHOOK_TOKENS: 'sekrit!' })).toThrow(ConfigError);
    try {
      loadConfig({ WEBHOOK_TOKENS: 'sekrit!' });
    } catch (err) {
      expect((err as Error).message).not.toContain('sekrit');
    }
  });

  it('takes only the X-Application-ID values HubEx knows (1 to 6)', () => {
    expect(loadConfig({ HUBEX_APPLICATION_ID: '3' }).hubex.applicationId).toBe(3);
    expect(() => loadConfig({ HUBEX_APPLICATION_ID: '7' })).toThrow(
      /HUBEX_APPLICATION_ID: must be one of HubEx's applications, 1 to 6 \(5 = Api/,
    );
    expect(() => loadConfig({ HUBEX_APPLICATION_ID: 'api' })).toThrow(/HUBEX_APPLICATION_ID/);
  });

  it('requires REDIS_URL with QUEUE=redis', () => {
    expect(() => loadConfig({ QUEUE: 'redis' })).toThrow(/REDIS_URL: is required when QUEUE=redis/);
  });

  it('takes several webhook tokens, trims them, and treats empty variables as unset', () => {
    const c = loadConfig({ WEBHOOK_TOKENS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb ', PORT: '', PUBLIC_URL: 'https://x.example/' });
    expect(c.webhookTokens).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(c.port).toBe(3000);
    expect(c.publicUrl).toBe('https://x.example');
  });

  it.each([
    ['true', true],
    ['false', false],
    ['0', false],
    // A number is a hop count, never `true` (which would trust every hop, and a spoofed header).
    ['1', 1],
    ['2', 2],
    ['10.0.0.1,10.0.0.2', '10.0.0.1,10.0.0.2'],
    ['127.0.0.1, 10.0.0.0/8', '127.0.0.1,10.0.0.0/8'],
    ['loopback', 'loopback'],
  ])('reads TRUST_PROXY=%s', (v, expected) => {
    expect(loadConfig({ TRUST_PROXY: v }).trustProxy).toEqual(expected);
  });

  it('refuses a TRUST_PROXY that is neither a hop count nor addresses, trusts every address, or counts absurd hops', () => {
    expect(() => loadConfig({ TRUST_PROXY: 'nginx.local' })).toThrow(
      /TRUST_PROXY: "nginx.local" is not a hop count, an IP address, a CIDR range/,
    );
    expect(() => loadConfig({ TRUST_PROXY: '0.0.0.0/0' })).toThrow(/TRUST_PROXY: "0.0.0.0\/0" trusts every address/);
    expect(() => loadConfig({ TRUST_PROXY: '127.0.0.1, ::/0' })).toThrow(/TRUST_PROXY: "::\/0" trusts every address/);
    expect(() => loadConfig({ TRUST_PROXY: '99999999999999999999' })).toThrow(/TRUST_PROXY: a hop count is at most 32/);
    expect(loadConfig({ TRUST_PROXY: '32' }).trustProxy).toBe(32);
  });

  it('warns about trusted ranges wide enough to hold clients', () => {
    expect(configWarnings(loadConfig({ TRUST_PROXY: '10.0.0.0/1' }))).toEqual([
      expect.stringMatching(/^TRUST_PROXY trusts very wide ranges \(10\.0\.0\.0\/1\)/),
    ]);
    expect(configWarnings(loadConfig({ TRUST_PROXY: '2001:db8::/16' }))).toHaveLength(1);
    expect(configWarnings(loadConfig({ TRUST_PROXY: '10.0.0.0/8,2001:db8::/32,127.0.0.1' }))).toEqual([]);
  });

  it('warns when every hop is trusted while the router listens beyond loopback', () => {
    expect(configWarnings(loadConfig({ TRUST_PROXY: 'true' }))).toEqual([
      expect.stringMatching(/^TRUST_PROXY=true trusts every X-Forwarded-For hop while the router listens on 0\.0\.0\.0/),
    ]);
    expect(configWarnings(loadConfig({ TRUST_PROXY: 'true', HOST: '127.0.0.1' }))).toEqual([]);
    expect(configWarnings(loadConfig({ TRUST_PROXY: '1' }))).toEqual([
      expect.stringMatching(/^TRUST_PROXY=1 trusts 1 hop\(s\) from whoever connects, while the router listens on 0\.0\.0\.0/),
    ]);
    expect(configWarnings(loadConfig({ TRUST_PROXY: '1', HOST: '127.0.0.1' }))).toEqual([]);
    expect(configWarnings(loadConfig({ TRUST_PROXY: '127.0.0.1' }))).toEqual([]);
  });

  it('masks a password in a URL it echoes in an error', () => {
    const attempt = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    const redis = attempt({ QUEUE: 'redis', REDIS_URL: 'http://:hunter2secret@redis.example:6379' });
    expect(redis).toContain('REDIS_URL: must be a redis:// or rediss:// URL (got "http://***@redis.example:6379")');
    const hubex = attempt({ HUBEX_BASE_URL: 'ftp://api:pa55word@hubex.example/fsm' });
    expect(hubex).toContain('(got "ftp://***@hubex.example/fsm")');
    for (const message of [redis, hubex]) {
      expect(message).not.toContain('hunter2secret');
      expect(message).not.toContain('pa55word');
    }
    expect(maskUrl('redis://user:pw@host:1/0')).toBe('redis://***@host:1/0');
    expect(maskUrl('redis://host:1/0')).toBe('redis://host:1/0');
    // The passwords that make a URL invalid, which is when it is echoed: '/', '#', '?', '@' in them.
    expect(maskUrl('redis://:abc/def@host:6379')).toBe('redis://***@host:6379');
    expect(maskUrl('rediss://default:a#b@h')).toBe('rediss://***@h');
    expect(maskUrl('https://u:p?w@api.example')).toBe('https://***@api.example');
    expect(maskUrl('redis://u:p@w@host')).toBe('redis://***@host');
  });

  it('refuses a Redis or HubEx URL without a host, which would print its password elsewhere', () => {
    for (const url of ['redis:/:secretpw@host', 'redis:secretpw@host']) {
      let message = '';
      try {
        loadConfig({ QUEUE: 'redis', REDIS_URL: url });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/REDIS_URL: must name a host/);
      expect(message).not.toContain('secretpw');
    }
  });

  it('refuses an ADMIN_TOKEN equal to a webhook token', () => {
    expect(() => loadConfig({ WEBHOOK_TOKENS: 'aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb', ADMIN_TOKEN: 'bbbbbbbbbbbbbbbb' })).toThrow(
      /ADMIN_TOKEN: must differ from every token in WEBHOOK_TOKENS/,
    );
    expect(loadConfig({ WEBHOOK_TOKENS: 'aaaaaaaaaaaaaaaa', ADMIN_TOKEN: 'cccccccccccccccc' }).adminToken).toBe('cccccccccccccccc');
  });

  it('polls and watches HubEx every minute when a HubEx token is set, not at all without one; 0 turns either off', () => {
    expect(loadConfig({})).toMatchObject({ reconcileIntervalMs: 0, webhookWatchIntervalMs: 0, webhookAutoActivate: false });
    expect(loadConfig({ HUBEX_SERVICE_TOKEN: 'svc-token-123456' })).toMatchObject({
      reconcileIntervalMs: 60_000,
      webhookWatchIntervalMs: 60_000,
    });
    expect(
      loadConfig({ HUBEX_ACCESS_TOKEN: 'acc-token-123456', RECONCILE_INTERVAL_MS: '0', WEBHOOK_WATCH_INTERVAL_MS: '0' }),
    ).toMatchObject({
      reconcileIntervalMs: 0,
      webhookWatchIntervalMs: 0,
    });
    expect(loadConfig({ RECONCILE_INTERVAL_MS: '5000', WEBHOOK_AUTO_ACTIVATE: 'TRUE' })).toMatchObject({
      reconcileIntervalMs: 5000,
      webhookAutoActivate: true,
    });
    expect(loadConfig({ WEBHOOK_AUTO_ACTIVATE: 'no' }).webhookAutoActivate).toBe(false);
    expect(() => loadConfig({ RECONCILE_INTERVAL_MS: '50', WEBHOOK_WATCH_INTERVAL_MS: 'often', WEBHOOK_AUTO_ACTIVATE: 'maybe' })).toThrow(
      /RECONCILE_INTERVAL_MS: must be 0 \(off\) or at least 100[\s\S]*WEBHOOK_WATCH_INTERVAL_MS: must be a whole number[\s\S]*WEBHOOK_AUTO_ACTIVATE: must be true or false/,
    );
  });

  it('reads a .env file, the environment winning', () => {
    const { dir, remove } = tempDir();
    try {
      writeFileSync(join(dir, '.env'), 'PORT=4001\nLOG_LEVEL=debug\n# a comment\nHOST="127.0.0.1"\n');
      const env = readEnv({ LOG_LEVEL: 'warn' }, dir);
      expect(loadConfig(env)).toMatchObject({ port: 4001, logLevel: 'warn', host: '127.0.0.1' });
      expect(readEnv({ A: '1' }, join(dir, 'nothing-here'))).toEqual({ A: '1' });
    } finally {
      remove();
    }
  });
});

it('docs/configuration.md lists every variable the router reads', () => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  expect(VARIABLES.length).toBeGreaterThan(30);
  expect(VARIABLES.filter((v) => !doc.includes(`\`${v}\``))).toEqual([]);
});
