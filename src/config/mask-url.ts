/**
 * A URL as it may be shown: a password or user in it (`redis://:pw@host`, `https://user:pw@host`)
 * replaced by ***. Works on text that is not a valid URL too: that is when it is shown, in an error.
 */
export function maskUrl(text: string): string {
  // Up to the last '@': a password may hold '/', '?', '#' or '@' itself, which is exactly what
  // makes the URL invalid and gets it echoed.
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/*/i.exec(text)?.[0] ?? '';
  return `${scheme}***${text.slice(at)}`;
}
