import { useEffect, useState } from 'preact/hooks';

// Pages live in the fragment (#/devices/ID): the server serves one index.html and needs no fallback route.

function parts(hash: string): string[] {
  return hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
}

/** The current page's path parts, e.g. ['devices', 'pump-7']. */
export function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return parts(hash);
}

/** The link to a page: each part escaped, so a name cannot add a part of its own. */
export function href(...path: string[]): string {
  return `#/${path.map(encodeURIComponent).join('/')}`;
}
