// The files an operator deploys with say what docs/scaling.md says: Redis in docker-compose.yml
// runs with the settings that make a 2xx durable (the same the Redis tests use), and the routers
// use it.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
const harness = readFileSync(new URL('./support/redis.ts', import.meta.url), 'utf8');

it('docker-compose.yml runs Redis with the AOF fsynced on every write and no eviction, as the tests do', () => {
  const command = /command: \[("redis-server".*)\]/.exec(compose)?.[1];
  expect(command).toBeDefined();
  const flags = JSON.parse(`[${command}]`) as string[];
  const value = (flag: string) => flags[flags.indexOf(flag) + 1];
  expect([value('--appendonly'), value('--appendfsync'), value('--maxmemory-policy')]).toEqual(['yes', 'always', 'noeviction']);
  // The harness's argument list, however it is wrapped.
  const harnessArgs = harness.replace(/\s+/g, ' ');
  for (const setting of ["'--appendonly', 'yes'", "'--appendfsync', 'always'", "'--maxmemory-policy', 'noeviction'"])
    expect(harnessArgs).toContain(setting);
  expect(compose).toMatch(/QUEUE: redis\n\s+REDIS_URL: redis:\/\/redis:6379/);
});
