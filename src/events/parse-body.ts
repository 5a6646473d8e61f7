// The edge of the data flow: raw request text to a JSON value, refusing what could hurt us.
import sjson from 'secure-json-parse';
import { HttpError } from '../errors.js';
import { BUILTIN_NAMES } from './keys.js';

/** Deeper JSON than this is refused before parsing; a HubEx event is a few levels deep. */
export const MAX_DEPTH = 64;

/** Parses a webhook body; every failure is an HttpError with a message a HubEx administrator can act on. */
export function parseBody(text: string): unknown {
  if (text.trim() === '') {
    throw new HttpError('EMPTY_BODY', 'The request has no body; HubEx sends the event as JSON in the body.');
  }
  const depth = fewBrackets(text, MAX_DEPTH) ? 0 : jsonDepth(text, MAX_DEPTH);
  if (depth > MAX_DEPTH) {
    throw new HttpError('TOO_DEEP', `The JSON is nested more than ${MAX_DEPTH} levels deep; a HubEx event is a flat object.`);
  }
  let value: unknown;
  try {
    value = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    if (err instanceof SyntaxError && /prototype/i.test(err.message)) throw forbidden();
    const detail = err instanceof Error ? err.message : String(err);
    throw new HttpError('INVALID_JSON', `The body is not valid JSON (${detail}).`);
  }
  // secure-json-parse refuses __proto__ and constructor.prototype; a bare "constructor" key, or
  // any other of Object.prototype's names ("toString", ...), is refused too: it would hide the
  // built-in for every handler that reads that object (String(obj) would throw).
  if (BUILTIN_KEY.test(text) || text.includes('\\u')) {
    const key = builtinKey(value);
    if (key !== undefined) throw forbidden(key);
  }
  return value;
}

/** Could name a key of Object.prototype's (a cheap test of the text before a walk of the tree). */
const BUILTIN_KEY = new RegExp([...BUILTIN_NAMES].join('|'));

const forbidden = (key = '__proto__') =>
  new HttpError('FORBIDDEN_KEY', `The JSON holds the key ${JSON.stringify(key)}, a built-in name of JavaScript objects, which is refused.`);

/** A key of Object.prototype's that some object in the tree has, if any. Iterative: the tree may be deep. */
function builtinKey(root: unknown): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (!Array.isArray(v)) for (const key of Object.keys(v)) if (BUILTIN_NAMES.has(key)) return key;
    for (const child of Object.values(v)) if (child !== null && typeof child === 'object') stack.push(child);
  }
  return undefined;
}

/**
 * Whether the text holds at most `limit` opening brackets, so that it cannot nest deeper than
 * that: found with indexOf, far cheaper than jsonDepth's walk over every character.
 */
function fewBrackets(text: string, limit: number): boolean {
  let n = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) if (++n > limit) return false;
  }
  return true;
}

/**
 * The nesting depth of a JSON text, counted without parsing (strings skipped), stopping
 * early once past `limit`. Iterative, so that a hostile body cannot exhaust the stack.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return max;
}
