/** The counters the fleet summary shows, summed over their labels. */
export interface FleetTotals {
  /** Accepted CONNECTs (every kind of session). */
  readonly connects: number;
  /** Accepted renewals. */
  readonly renewals: number;
  /** Live sessions now (a gauge). */
  readonly sessions: number;
}

/** Sums a metric's samples whose labels include `match` (Prometheus text exposition format). */
function sum(text: string, name: string, match = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (match && !line.includes(match)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

/**
 * Reads the totals from /metrics text: one source for a single broker and for
 * a node, whose primary sums its workers' metrics into the same text.
 */
export function fleetTotals(metricsText: string): FleetTotals {
  return {
    connects: sum(metricsText, 'credbroker_auth_results_total', 'result="ok"'),
    renewals: sum(metricsText, 'credbroker_renewals_total', 'result="accepted"'),
    sessions: sum(metricsText, 'credbroker_connected_clients'),
  };
}

/** One point of the rate chart: the minute that ended at `at`. */
export interface RatePoint { readonly at: string; readonly connectsPerMinute: number; readonly renewalsPerMinute: number }

const SAMPLE_MS = 10_000;
/** 15 minutes of samples. */
const KEEP = 91;

/**
 * Connect and renewal rates over the last minutes, from samples of the
 * counters taken every 10 s (bounded: 15 minutes are kept). Each point is the
 * increase over the minute before it, so a new broker shows points from its
 * second sample on (the newest point is now, against the oldest sample of the last minute).
 */
export class FleetRates {
  private readonly samples: { at: number; connects: number; renewals: number }[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly read: () => Promise<FleetTotals>) {
    const sample = () => void this.read().then((t) => this.add(Date.now(), t), () => {});
    sample();
    this.timer = setInterval(sample, SAMPLE_MS).unref();
  }

  private add(at: number, t: FleetTotals): void {
    this.samples.push({ at, connects: t.connects, renewals: t.renewals });
    if (this.samples.length > KEEP) this.samples.shift();
  }

  /** Points a minute apart, oldest first, ending with one for now (`current`: the totals read now). */
  points(current: FleetTotals, now = Date.now()): RatePoint[] {
    const all = [...this.samples, { at: now, connects: current.connects, renewals: current.renewals }];
    const out: RatePoint[] = [];
    // Walk back from now a minute at a time; each point compares with the sample nearest a minute before it.
    for (let end = all.length - 1; end > 0;) {
      const target = all[end]!.at - 60_000;
      let start = end - 1;
      while (start > 0 && all[start - 1]!.at >= target) start--;
      const a = all[start]!;
      const b = all[end]!;
      const perMinute = 60_000 / Math.max(1, b.at - a.at);
      out.push({
        at: new Date(b.at).toISOString(),
        connectsPerMinute: Math.round(Math.max(0, b.connects - a.connects) * perMinute * 10) / 10,
        renewalsPerMinute: Math.round(Math.max(0, b.renewals - a.renewals) * perMinute * 10) / 10,
      });
      end = start;
    }
    return out.reverse();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
