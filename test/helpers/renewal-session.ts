import { randomBytes } from 'node:crypto';
import type { IClientOptions } from 'mqtt';
import { connect } from './broker.js';

export interface Answer { kind: 'accepted' | 'rejected'; body: Record<string, unknown> }

/**
 * A bare MQTT session speaking the renewal protocol byte for byte, as firmware
 * would: subscribe `$devices/{id}/token/+`, publish JSON on `…/renew`, match
 * the answer by requestId. `answers` keeps every answer, in arrival order.
 */
export async function renewalSession(url: string, id: string, password: string, extra: IClientOptions = {}) {
  const { client, code } = await connect(url, { clientId: id, username: id, password, ...extra });
  if (!client) return { code, client: null, request: null, answers: [] as Answer[] } as const;
  await client.subscribeAsync(`$devices/${id}/token/+`, { qos: 1 });
  const waiting = new Map<unknown, (a: Answer) => void>();
  const answers: Answer[] = [];
  client.on('message', (topic, payload) => {
    const kind = topic === `$devices/${id}/token/accepted` ? 'accepted' : topic === `$devices/${id}/token/rejected` ? 'rejected' : null;
    if (!kind) return;
    const a: Answer = { kind, body: JSON.parse(payload.toString()) as Record<string, unknown> };
    answers.push(a);
    waiting.get(a.body.requestId)?.(a);
  });
  /** Publishes `body` (default: a fresh request) on `topic` (default: own renew topic) and waits for the answer with the same requestId. */
  const request = (body: unknown = { requestId: randomBytes(16).toString('base64url') }, topic = `$devices/${id}/token/renew`, raw?: string) =>
    new Promise<Answer>((resolve, reject) => {
      const rid = (body as { requestId?: unknown } | null)?.requestId ?? null;
      const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
      waiting.set(rid, (a) => { clearTimeout(timer); waiting.delete(rid); resolve(a); });
      client.publish(topic, raw ?? JSON.stringify(body), { qos: 1 });
    });
  return { code, client, request, answers } as const;
}

/** The jti claim of a token (no verification: tests read their own tokens). */
export const jtiOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
