import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import type { Env } from './load.js';

/**
 * The process environment over a `.env` file in `cwd`, when there is one.
 * Variables already set in the environment win, as with dotenv.
 */
export function readEnv(processEnv: Env = process.env, cwd = process.cwd()): Env {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return processEnv;
  const fromFile = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  return { ...fromFile, ...processEnv };
}
