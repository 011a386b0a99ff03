import type { AedesOptions } from 'aedes';

type Authenticate = NonNullable<AedesOptions['authenticate']>;

/**
 * CONNECT work per event-loop turn before the listeners are served again. A
 * 5,000-socket storm fills a 4,096 listen queue in well under 100 ms from one
 * fast client; 10 ms is about twenty CONNECTs here, and a turn costs one
 * epoll_wait more, nothing measurable per CONNECT.
 */
export const CONNECT_SLICE_MS = 10;

/**
 * CONNECTs spread over event-loop turns, so that a reconnect storm cannot keep
 * the listeners from accepting. aedes starts every CONNECT that one poll phase
 * read in the next check phase (setImmediate), back to back: signature check,
 * session set-up, CONNACK, about half a millisecond each here. With thousands
 * of sockets readable at once that phase ran for hundreds of milliseconds, and
 * meanwhile nothing took connections off the kernel's listen queue (capped by
 * `net.core.somaxconn`): it overflowed and the kernel dropped the handshakes,
 * which clients retry only after a second or more. Once `sliceMs` of a turn has
 * gone into CONNECTs, the next ones wait for a later turn (in arrival order), so
 * the poll phase, and with it `accept`, comes round at least every `sliceMs`
 * plus one CONNECT. A CONNECT whose socket closed while it waited is not
 * verified at all.
 *
 * @example
 * const slices = new ConnectSlices(CONNECT_SLICE_MS, () => metrics.connectsDeferred.inc());
 * Aedes.createBroker({ authenticate: slices.wrap(createAuthenticate(ctx)) });
 */
export class ConnectSlices {
  /** When this turn's slice ends (performance.now() ms); -1: no CONNECT has run in this turn yet. */
  private sliceEnds = -1;
  private readonly endTurn = () => { this.sliceEnds = -1; };

  constructor(
    private readonly sliceMs: number,
    private readonly onDeferred: () => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Runs `fn` now while this turn's slice lasts, otherwise on a later turn. */
  run(fn: () => void): void {
    const t = this.now();
    if (this.sliceEnds < 0) {
      this.sliceEnds = t + this.sliceMs;
      // Queued before any CONNECT deferred in this turn: the next turn starts with a fresh slice.
      setImmediate(this.endTurn);
    }
    if (t <= this.sliceEnds) return fn();
    this.onDeferred();
    setImmediate(() => this.run(fn));
  }

  /** The aedes `authenticate` hook `hook`, run in slices. */
  wrap(hook: Authenticate): Authenticate {
    return (client, username, password, done) => this.run(() => {
      // aedes ignores the answer for a closed client: spend no signature check on it.
      if (client.closed) return done(null, false);
      hook(client, username, password, done);
    });
  }
}
