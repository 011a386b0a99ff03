/**
 * A URL for logs and error lines: its password (`redis://:secret@host`,
 * `postgres://user:secret@host/db`) replaced, so that a connection string can be
 * shown without the credential in it. Text that is not a URL comes back as it was.
 */
export function redactUrl(text: string): string {
  if (!URL.canParse(text)) return text;
  const url = new URL(text);
  if (!url.password) return text;
  url.password = '***';
  return url.href;
}
