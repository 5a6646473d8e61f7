// Messages between the store's proxy (./sqlite-inbox.ts) and its worker thread (./worker.ts).
/* eslint-disable @typescript-eslint/no-explicit-any */

export type Op = 'accept' | 'claim' | 'settle' | 'extend' | 'release' | 'replay' | 'probe' | 'list' | 'get' | 'counts' | 'backlog' | 'listEvents' | 'getEvent' | 'prune' | 'stats';

export interface Call {
  readonly id: number;
  readonly op: Op;
  readonly args: readonly any[];
  /** The caller's clock, so that tests can move time. */
  readonly now: number;
}

export interface WireError {
  readonly message: string;
  readonly name: string;
  /** The store cannot take writes (the route answers 503). */
  readonly unavailable: boolean;
}

export type Reply = { readonly id: number; readonly value?: unknown; readonly error?: WireError };

export type WorkerMessage =
  | { readonly replies: readonly Reply[] }
  | { readonly log: { level: 'info' | 'warn' | 'error'; msg: string; detail?: Record<string, unknown> } }
  | { readonly closed: true };
