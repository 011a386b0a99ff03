const LOGGED = Symbol('credbroker.logged');

/**
 * Marks an error handed to aedes for a refusal or kick that already has its own
 * log line: aedes re-emits it as `clientError`, which must not log it twice.
 */
export function alreadyLogged<E extends Error>(err: E): E {
  return Object.assign(err, { [LOGGED]: true });
}

export function wasLogged(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [LOGGED]?: boolean })[LOGGED] === true;
}
