// The Lua scripts of the Redis back end, kept in .lua files beside this one (the build copies
// them into dist/, scripts/copy-assets.mjs).
import { readFileSync } from 'node:fs';

export function luaScript(
  name: 'accept' | 'flow' | 'rate-take' | 'rate-pause' | 'rate-paused' | 'slot-take' | 'slot-renew' | 'lease',
): string {
  return readFileSync(new URL(`./${name}.lua`, import.meta.url), 'utf8');
}
