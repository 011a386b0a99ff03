import { endClient, publishOn, subscribeTokenTopics, type Conn } from './connection.js';
import type { RenewalExchange, RenewedEvent } from './renewal.js';

/**
 * The refresh path (SPEC "Renewal"): on a session opened with the refresh
 * credential, which may do nothing but renew, subscribe the token topics,
 * renew once (the exchange adopts the answer: saved before it is used) and
 * hang up. Throws the DeviceError of a refusal.
 */
export async function renewOnRefreshSession(conn: Conn, exchange: RenewalExchange): Promise<RenewedEvent> {
  conn.client.on('message', (topic, payload) => exchange.receive(topic, payload));
  try {
    await subscribeTokenTopics(conn, exchange.topics.filter);
    return await exchange.request(publishOn(conn));
  } finally {
    await endClient(conn.client, false);
  }
}
