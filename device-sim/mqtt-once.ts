import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface OnceResult {
  /** CONNACK return code (0 = accepted); -1 another error, -2 closed before any CONNACK. */
  readonly code: number;
  readonly client: MqttClient | null;
  readonly ms: number;
}

/** One CONNECT with no reconnect: resolves with the CONNACK code. */
export function connectOnce(url: string, opts: IClientOptions, timeoutMs = 10_000): Promise<OnceResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: timeoutMs, protocolVersion: 4, clean: true, ...opts });
    const done = (code: number, keep: boolean) => {
      if (settled) return;
      settled = true;
      if (!keep) client.end(true);
      resolve({ code, client: keep ? client : null, ms: performance.now() - started });
    };
    client.once('connect', () => done(0, true));
    client.once('error', (err: Error & { code?: number | string }) => done(typeof err.code === 'number' ? err.code : -1, false));
    client.once('close', () => done(-2, false));
  });
}
