// A handler module a user could have written, for tests that run the router as a process: it
// records each run's start and end (event id and process id) in a file, takes RUN_MS per run,
// and fails for good while FAIL_FILE exists. With the data folder and HANDLERS_DIR it lives in.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { tempDir } from './test-app.js';

const recorderModule = (runMs: number) => `
import { appendFileSync, existsSync } from 'node:fs';
export default {
  name: 'recorder',
  on: '*',
  async handle({ event }) {
    if (process.env.FAIL_FILE && existsSync(process.env.FAIL_FILE)) {
      const e = new Error('the recorder is switched off');
      e.name = 'PermanentError'; // recognised by name: no retry can help
      throw e;
    }
    appendFileSync(process.env.RECORD_FILE, 'start ' + event.id + ' ' + process.pid + '\\n');
    await new Promise((resolve) => setTimeout(resolve, ${runMs}));
    appendFileSync(process.env.RECORD_FILE, 'end ' + event.id + ' ' + process.pid + '\\n');
  },
};
`;

export interface RecorderSetup {
  readonly dataDir: string;
  /** The file each run's lines go to. */
  readonly record: string;
  /** While this file exists, runs fail with a PermanentError. */
  readonly failFile: string;
  /** HANDLERS_DIR, RECORD_FILE, FAIL_FILE, LOG_EVENTS=false. */
  readonly env: Record<string, string>;
}

/** A data folder and a HANDLERS_DIR holding the recorder, removed when the test ends. */
export function setupRecorder(runMs: number): RecorderSetup {
  const data = tempDir();
  const handlers = tempDir('hubex-router-handlers-');
  onTestFinished(() => {
    data.remove();
    handlers.remove();
  });
  writeFileSync(join(handlers.dir, 'recorder.mjs'), recorderModule(runMs));
  const record = join(handlers.dir, 'record.log');
  writeFileSync(record, '');
  const failFile = join(handlers.dir, 'fail');
  return {
    dataDir: data.dir,
    record,
    failFile,
    env: { HANDLERS_DIR: handlers.dir, RECORD_FILE: record, FAIL_FILE: failFile, LOG_EVENTS: 'false' },
  };
}

/** The event ids of the recorded starts or ends, in order (with `pids`, the process that ran each instead). */
export function recorded(file: string, kind: 'start' | 'end', pids = false): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${kind} `))
    .map((l) => l.split(' ')[pids ? 2 : 1]!);
}
