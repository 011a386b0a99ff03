import net from 'node:net';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { connect } from './broker.js';

export interface ClaimOutcome {
  /** CONNACK return code: 0 when the claim session was accepted. */
  readonly code: number;
  /** `accepted` or `rejected` (null: no answer, or refused at CONNECT). */
  readonly answer: 'accepted' | 'rejected' | null;
  readonly body: Record<string, unknown> | null;
  /** ms from the answer to the broker closing the session (null if it never closed within the wait). */
  readonly closedAfterMs: number | null;
}

/**
 * One claim with plain MQTT.js, as SPEC "Provisioning by claim" spells it:
 * CONNECT (client id = device id, user name claim:NAME, password = claim
 * credential), SUBSCRIBE `$claims/{id}/provision/+`, PUBLISH the request on
 * `$claims/{id}/provision`, read the answer, wait for the broker to close.
 */
export async function claimOnce(url: string, o: { id: string; claim: string; credential: string; payload?: string; waitCloseMs?: number }): Promise<ClaimOutcome> {
  const r = await connect(url, { clientId: o.id, username: `claim:${o.claim}`, password: o.credential });
  if (r.code !== 0 || !r.client) return { code: r.code, answer: null, body: null, closedAfterMs: null };
  const client = r.client;
  client.on('error', () => {});
  const closedAt = new Promise<number>((res) => client.once('close', () => res(Date.now())));
  const got = new Promise<{ topic: string; body: Record<string, unknown> }>((res) => {
    client.once('message', (topic, payload) => res({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
  });
  await client.subscribeAsync(`$claims/${o.id}/provision/+`, { qos: 1 });
  client.publish(`$claims/${o.id}/provision`, o.payload ?? JSON.stringify({ requestId: `req-${o.id}` }), { qos: 1 });
  const answer = await Promise.race([got, closedAt.then(() => null), new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
  if (!answer) {
    client.end(true);
    return { code: 0, answer: null, body: null, closedAfterMs: null };
  }
  const at = Date.now();
  const closed = await Promise.race([closedAt, new Promise<null>((res) => setTimeout(() => res(null), o.waitCloseMs ?? 10_000))]);
  client.end(true);
  return {
    code: 0, answer: answer.topic.endsWith('/accepted') ? 'accepted' : 'rejected', body: answer.body,
    closedAfterMs: closed === null ? null : closed - at,
  };
}

/** A claim session left open (connected, subscribed), for probing what else it may do. */
export async function claimSessionOpen(url: string, o: { id: string; claim: string; credential: string }): Promise<MqttClient> {
  const r = await connect(url, { clientId: o.id, username: `claim:${o.claim}`, password: o.credential });
  if (!r.client) throw new Error(`claim CONNECT refused: ${r.code}`);
  r.client.on('error', () => {});
  return r.client;
}

export interface RawClaimOutcome {
  /** CONNACK return code (null: closed without one, or no CONNACK within the wait). */
  readonly code: number | null;
  /** Topics of every PUBLISH the connection received before it closed. */
  readonly published: string[];
  /** The broker closed the connection (the sentinel: nothing can arrive after it). */
  readonly closed: boolean;
}

/**
 * A unit that sends CONNECT and SUBSCRIBE `$claims/{id}/provision/+` in one
 * write (raw TCP, mqtt-packet), as a hostile clone does to be subscribed the
 * moment its session exists; reads every packet until the broker closes the
 * connection, or ends it itself `holdMs` after a CONNACK 0.
 */
export function rawClaimAttempt(port: number, o: { id: string; claim: string; credential: string; clean?: boolean; holdMs?: number; timeoutMs?: number }): Promise<RawClaimOutcome> {
  const bytes = Buffer.concat([
    mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: o.clean ?? true, keepalive: 30, clientId: o.id, username: `claim:${o.claim}`, password: Buffer.from(o.credential) }),
    mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$claims/${o.id}/provision/+`, qos: 1 }] }),
  ]);
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let code: number | null = null;
    const published: string[] = [];
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ code, published, closed });
    };
    const timer = setTimeout(() => done(false), o.timeoutMs ?? 20_000);
    parser.on('packet', (p) => {
      if (p.cmd === 'connack') {
        code = (p as { returnCode?: number }).returnCode ?? null;
        if (code === 0) setTimeout(() => done(false), o.holdMs ?? 3000);
      } else if (p.cmd === 'publish') published.push((p as { topic: string }).topic);
    });
    parser.on('error', () => done(false));
    sock.on('data', (d) => parser.parse(d));
    sock.on('error', () => done(true));
    sock.on('close', () => done(true));
    sock.on('connect', () => sock.write(bytes));
  });
}
