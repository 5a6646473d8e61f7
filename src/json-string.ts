// JSON.stringify of a string, without its cost for the common string that needs no escape.

// Nothing that JSON.stringify would escape: quote, backslash, control characters, surrogates.
// eslint-disable-next-line no-control-regex -- control characters are exactly what needs escaping
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

export function jsonString(s: string): string {
  return s.length <= 256 && PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}
