// Runs once before all test files: says, in one line, when the Redis tests will be skipped.
import { spawnSync } from 'node:child_process';

export default function setup(): void {
  const server = process.env.REDIS_SERVER ?? 'redis-server';
  if (spawnSync(server, ['--version'], { stdio: 'ignore' }).status !== 0 && !process.env.CI) {
    process.stdout.write(
      `redis-server not found: skipping the Redis tests (test/redis-*.test.ts); install it with: apt-get install redis-server\n`,
    );
  }
}
