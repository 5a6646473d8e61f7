#!/usr/bin/env node
// The command line: `hubex-router <command>`. Human output by default, --json for scripts.
// Exit codes: 0 done, 1 the operation failed (the message says why), 2 a usage error, 78 bad
// configuration (as `serve`).
import { ConfigError } from '../config.js';
import { deliveries } from './commands/deliveries.js';
import { doctor } from './commands/doctor.js';
import { events } from './commands/events.js';
import { fakeHubex } from './commands/fake-hubex.js';
import { send } from './commands/send.js';
import { token } from './commands/token.js';
import { webhooks } from './commands/webhooks.js';
import { NeedsConfigError, UsageError } from './errors.js';
import { out } from './output.js';
import { USAGE } from './usage.js';

// `hubex-router deliveries list | head`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** Runs one command; its exit code, or -1 for `serve`, whose process lives on. */
export async function run(argv: string[]): Promise<number> {
  const [command = 'serve', ...args] = argv;
  if (command === '--help' || command === '-h' || command === 'help' || args.includes('--help')) {
    out(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      await import('../main.js'); // runs the router; the process lives on
      return -1;
    case 'token':
      return token(args);
    case 'doctor':
      return doctor(args);
    case 'webhooks':
      return webhooks(args);
    case 'events':
      return events(args);
    case 'deliveries':
      return deliveries(args);
    case 'send':
      return send(args);
    case 'fake-hubex':
      return fakeHubex(args);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Says on stderr why a command failed (a usage error also points at --help); returns the exit code. */
function report(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`hubex-router: ${err.message}\nRun hubex-router --help for the commands.\n`);
    return 2;
  }
  process.stderr.write(`hubex-router: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof ConfigError || err instanceof NeedsConfigError) return 78;
  return 1; // an OperationError, or anything unforeseen
}

try {
  const code = await run(process.argv.slice(2));
  // Done: exit even if something left a timer or a socket open (a handler module doctor loaded).
  if (code >= 0) exitAfterOutput(code);
} catch (err) {
  exitAfterOutput(report(err));
}

/** Exits once what was written to stdout and stderr has been handed to the system. */
function exitAfterOutput(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
