import type { RatePoint } from './types.js';
import { when } from './ui.js';

const W = 480;
const H = 140;
const PAD = 24;

/** One series scaled into the chart's box. */
function scaled(values: readonly number[], max: number): [number, number][] {
  const step = values.length > 1 ? (W - 2 * PAD) / (values.length - 1) : 0;
  return values.map((v, i) => [PAD + i * step, H - PAD - (v / max) * (H - 2 * PAD)]);
}

/** A series as a line with a dot a minute (a single minute is a dot alone). */
function Series({ name, values, max }: { name: string; values: readonly number[]; max: number }) {
  const xy = scaled(values, max);
  return (
    <g class={name}>
      <polyline points={xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')} />
      {xy.map(([x, y], i) => <circle key={i} cx={x.toFixed(1)} cy={y.toFixed(1)} r="2.5" />)}
    </g>
  );
}

/** Connects and renewals per minute as two lines: plain SVG, no chart library. */
export function RateChart({ points }: { points: readonly RatePoint[] }) {
  if (points.length === 0) return <p class="muted">No rates yet.</p>;
  const max = Math.max(1, ...points.map((p) => Math.max(p.connectsPerMinute, p.renewalsPerMinute)));
  const first = points[0]!;
  const last = points[points.length - 1]!;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label="connects and renewals per minute">
        <line class="axis" x1={PAD} y1={H - PAD} x2={W - PAD} y2={H - PAD} />
        <line class="axis" x1={PAD} y1={PAD} x2={PAD} y2={H - PAD} />
        <text x={PAD + 4} y={PAD - 6} class="label">{Math.round(max * 10) / 10}/min</text>
        <text x={PAD} y={H - 6} class="label">{when(first.at)}</text>
        <text x={W - PAD} y={H - 6} class="label end">{when(last.at)}</text>
        <Series name="connects" values={points.map((p) => p.connectsPerMinute)} max={max} />
        <Series name="renewals" values={points.map((p) => p.renewalsPerMinute)} max={max} />
      </svg>
      <figcaption>
        <span class="key connects">connects</span> <span class="key renewals">renewals</span> per minute
      </figcaption>
    </figure>
  );
}
