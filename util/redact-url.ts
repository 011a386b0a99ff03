/**
 * The one redactor for what credbroker prints (errors, logs, banners): the
 * password of every URL in `text` (`redis://:secret@host`,
 * `postgres://user:secret@host/db`) and every `password=` parameter or
 * keyword/value pair becomes `***`. The text need not be a URL, nor the URL
 * parse: a password may hold `@`, `:`, `/`, spaces or percent-escapes, and the
 * port may be out of range. Where it is unsure, it masks more, never less.
 */
export function redactUrl(text: string): string {
  return text.split('\n').map(redactLine).join('\n');
}

const SCHEME = /\b[a-z][a-z0-9+.-]*:\/\//gi;
const KEYWORD = /(^|[?&;\s])(password|pass|passwd|pwd)=('[^']*'|"[^"]*"|[^&;\s]*)/gi;

function redactLine(line: string): string {
  let out = '';
  let from = 0;
  const starts = [...line.matchAll(SCHEME)].map((m) => ({ at: m.index, end: m.index + m[0].length }));
  starts.forEach((s, i) => {
    // A URL's user information ends at the last `@` before the next URL (a password may hold `@` itself).
    const limit = starts[i + 1]?.at ?? line.length;
    const at = line.lastIndexOf('@', limit - 1);
    if (at < s.end) return;
    const colon = line.indexOf(':', s.end);
    if (colon === -1 || colon > at) return; // a user name alone is not a secret
    out += `${line.slice(from, colon + 1)}***`;
    from = at;
  });
  return (out + line.slice(from)).replace(KEYWORD, '$1$2=***');
}
