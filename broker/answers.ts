import type { Client } from 'aedes';
import { topicMatches } from '../acl/index.js';

/**
 * The filters a client holds: aedes 1.2 keeps them on the client, keyed by
 * filter (lib/handlers/subscribe.js), restored ones of a persistent session too.
 * Not in aedes' types; test/secrets-point-to-point.test.ts fails if it moves.
 */
function filtersOf(client: Client): string[] {
  return Object.keys((client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
}

/**
 * Writes a renewal or claim answer (SPEC "Renewal", "Provisioning by claim") to
 * the connection that asked, and to no one else. Never `aedes.publish`: that
 * reaches every matching subscription, the cluster bus and, at QoS 1, the
 * persistence. `client.publish` at QoS 0 is aedes' `deliver0`: authorizeForward,
 * then straight onto this client's socket, with no mq, no retained copy, no
 * offline queue and no outgoing store. QoS 1 would store the packet of a
 * persistent session (with aedes-persistence-redis: in Redis) until it is
 * acknowledged, and would save nothing: a renewal sent again with the same
 * requestId gets the same answer again, and a claim session is closed after its
 * answer whatever the QoS. The client gets it only through a filter of its own
 * that matches `topic`, as a publish would have reached it.
 * @param written called once the answer is written (a write error closes the client in aedes), or at once when nothing is
 */
export function answerTo(client: Client, topic: string, body: object, written: () => void = () => {}): void {
  if (!filtersOf(client).some((f) => topicMatches(f, topic))) return process.nextTick(written);
  client.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 0, retain: false, dup: false }, () => written());
}
