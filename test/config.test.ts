// Configuration: defaults, validation with one message naming every bad variable, .env files.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, loadConfig, readEnv, VARIABLES } from '../src/config.js';
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
    expect(() => loadConfig({ HUBEX_APPLICATION_ID: '7' })).toThrow(/HUBEX_APPLICATION_ID: must be one of HubEx's applications, 1 to 6 \(5 = Api/);
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
    ['2', 2],
    ['10.0.0.1,10.0.0.2', '10.0.0.1,10.0.0.2'],
  ])('reads TRUST_PROXY=%s', (v, expected) => {
    expect(loadConfig({ TRUST_PROXY: v }).trustProxy).toEqual(expected);
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
