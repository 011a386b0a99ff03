/** Polls until `check` holds, or throws naming `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * `p`, or an error naming `what` once `ms` have passed without it settling. The
 * deadline does not hold the process open: what `p` waits on does, or tap reports the test unfinished.
 */
export function within<T>(what: string, p: Promise<T>, ms = 10_000): Promise<T> {
  let timer!: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref(); });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
