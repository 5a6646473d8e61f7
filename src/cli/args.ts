// Options as each command declares them; every mistake in them is a UsageError (exit 2).
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export type Options = Record<string, { type: 'string' | 'boolean' }>;

export type Values = Record<string, string | boolean | undefined>;

/** The command's options, with --json and --help, which every command takes. */
export function parse(args: string[], options: Options = {}): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' }, help: { type: 'boolean' }, ...options },
    });
    return { values: parsed.values as Values, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A whole-number option (`--limit 50`). */
export const num = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(v)}`);
  return Number(v);
};

/** A list of ids (`--events 40,41`); unset is empty. */
export const idList = (v: unknown, name: string): number[] => {
  if (v === undefined) return [];
  if (typeof v !== 'string' || !/^\d+(,\d+)*$/.test(v.replace(/\s/g, '')))
    throw new UsageError(`--${name} takes ids separated by commas, like 40,41`);
  return v.replace(/\s/g, '').split(',').map(Number);
};
