import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  readonly data: T | null;
  readonly error: string | null;
  readonly reload: () => void;
}

/**
 * Loads data for a page and loads it again when `deps` change or on `reload()`;
 * an answer that arrives after a newer request was made is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    load().then(
      (d) => {
        if (mine !== latest.current) return;
        setData(d);
        setError(null);
      },
      (e: unknown) => {
        if (mine === latest.current) setError(e instanceof Error ? e.message : String(e));
      },
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, reload };
}
