// The command line's own failures (src/errors.ts); index.ts turns each into its exit code.
export { NeedsConfigError, UsageError } from '../errors.js';
