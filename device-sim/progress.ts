import cliProgress from 'cli-progress';

export interface ProgressSnapshot {
  readonly elapsedMs: number;
  readonly totalMs: number;
  readonly phase: string;
  readonly connected: number;
  readonly devices: number;
  readonly renewals: number;
  readonly denials: number;
  readonly kicks: number;
  readonly errors: number;
}

export interface Progress {
  update(s: ProgressSnapshot): void;
  stop(): void;
}

const silent: Progress = { update() {}, stop() {} };

/**
 * Live progress on stderr, only on a TTY (never with --json, never in a pipe or
 * a CI log): elapsed time, connected devices, renewals, denials, kicks, errors.
 */
export function createProgress(enabled: boolean | 'auto', json: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  const on = enabled === true || (enabled === 'auto' && !json && stream.isTTY === true);
  if (!on) return silent;
  const bar = new cliProgress.SingleBar({
    stream,
    format: '{phase} {bar} {elapsed_s}/{total_s}s | connected {connected}/{devices} | renewals {renewals} | denials {denials} | kicks {kicks} | errors {errors}',
    hideCursor: true,
    clearOnComplete: true,
    barsize: 20,
    fps: 4,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(s) {
      const payload = { ...s, elapsed_s: Math.floor(s.elapsedMs / 1000), total_s: Math.round(s.totalMs / 1000) };
      if (!started) {
        bar.start(Math.max(1, s.totalMs), Math.min(s.elapsedMs, s.totalMs), payload);
        started = true;
      } else bar.update(Math.min(s.elapsedMs, s.totalMs), payload);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
