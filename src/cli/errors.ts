// The command line's own failures; index.ts turns each into its exit code.

/** A command or option that does not exist or is misused (exit 2). */
export class UsageError extends Error {}

/** Not runnable as configured (exit 78): the message says which variable to set. */
export class NeedsConfigError extends Error {}
