import { useState } from 'preact/hooks';

export interface Action {
  readonly busy: boolean;
  readonly error: string | null;
  /** Runs `fn` once at a time; a failure is kept in `error` for the page to show. Resolves whether it succeeded. */
  readonly run: (fn: () => Promise<void>) => Promise<boolean>;
}

/** The state of one user action (a button, a form) that calls the API. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
      setError(null);
      return true;
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}
