// What a command prints on stdout: lines for people, JSON for --json.

export const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

export const json = (v: unknown): void => out(JSON.stringify(v, null, 2));
