import type { Aedes, Client } from 'aedes';
import type { Redis } from 'ioredis';
import type { Logger } from '../broker/index.js';
import { CommandBatch } from './command-batch.js';

/** What happened to a takeover: sent to the owner, or received (closed: its session was the one displaced; stale: it was not). */
export type TakeoverEvent = 'sent' | 'closed' | 'stale' | 'claim_failed';

/** The bus's publish/subscribe, as ownership uses it. */
export interface TakeoverChannel {
  on(topic: string, fn: (packet: { payload: Buffer | string }, done: () => void) => void, done?: () => void): unknown;
  emit(packet: { topic: string; payload: Buffer }, done?: (err?: Error) => void): void;
}

/** The Redis key of a client id's claim: present while the client is connected to some broker of the bus. */
export const claimKey = (clientId: string) => `credbroker:owner:${clientId}`;
/** A claim's lifetime in Redis unless its broker renews it: a broker that died leaves none for longer. */
export const CLAIM_TTL_MS = 30_000;
/** How often a broker renews the claims of its clients: three chances before they lapse. */
const RENEW_MS = CLAIM_TTL_MS / 3;
// Deletes the key only while it still names this claim: a newer one (here or on another broker) stays.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
// After an outage: takes the key back unless it holds a claim of a connection made at the same
// instant or later (ARGV[2], ms). Returns nil (kept or taken, no one displaced), 'lost' (the other
// connection is newer: close ours), or the claim displaced (tell its broker).
const RECLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return nil end
if cur then
  local at = tonumber(string.match(cur, '|(%d+)$'))
  if at == nil or at >= tonumber(ARGV[2]) then return 'lost' end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return cur`;

// A clean session's start in one round trip: the claim (as `claim`), and the drop of what a
// previous persistent session of the id left in Redis [MQTT-3.1.2-6] (KEYS[2..]: its
// subscriptions hash, its queue, its QoS 2 receipts, and the set of sessions, ARGV[3] the id).
// Returns the claim displaced (nil if none) and the dropped session's subscription filters.
const CLAIM_CLEAN = `
local prev = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
local filters = redis.call('HKEYS', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[3])
return {prev, filters}`;

/** The Redis keys of a client id's persistent session, as the store names them (bus-persistence.ts). */
export interface SessionKeys {
  readonly subscriptions: string;
  readonly queue: string;
  readonly incoming: string;
  /** The set of client ids with a stored session. */
  readonly index: string;
}

/** `$SYS/<id>/new/clients` and `$SYS/<id>/disconnect/clients`: aedes' announcements of every CONNECT and disconnect. */
export const announcement = (brokerId: string) => new RegExp(`^\\$SYS/${brokerId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(new|disconnect)/clients$`);
const takeoverTopic = (brokerId: string) => `$SYS/${brokerId}/takeover`;
/** A claim is `<broker id>|<sequence>|<ms when the connection was registered>`. */
const claimedAt = (claim: string) => Number(claim.slice(claim.lastIndexOf('|') + 1));

/**
 * Who holds each client id on the bus, kept in Redis, in place of aedes'
 * broadcast of every CONNECT to every broker (`$SYS/<id>/new/clients`, which each
 * one checked against its own clients: 20–28 % of the CONNECT rate and most of
 * Redis' CPU in the probe).
 *
 * A broker that registers a client claims its id with one `SET key claim GET`;
 * the claim names the broker and this connection. A clean session is claimed by
 * `claimClean` instead, from the store, in the same script that drops a previous
 * persistent session of the id: its CONNECT's one round trip to Redis. When the
 * previous claim names another broker, that broker alone gets a takeover message naming the claim it
 * made, and closes the client only if it still holds that very claim: a newer
 * connection of the device on that broker is left alone. Redis orders two claims
 * of the same id, so when a device reaches two brokers at once exactly one
 * connection survives, the later claim (the newer connection wins, as in one
 * process); neither can close the other's newer claim, so there is no livelock.
 * A client that leaves deletes its claim if the key still holds it. A claim
 * expires after CLAIM_TTL_MS unless renewed: every RENEW_MS the broker renews
 * all its clients' keys in one pipelined PEXPIRE batch (one timer per broker, not
 * per client), so the claims of a broker killed with -9 are gone within the TTL.
 *
 * Within one broker aedes itself closes the older client of an id. During a
 * Redis outage claims fail (counted): a device that connects to a second broker
 * then keeps a stale session on the first until Redis is back, when every broker
 * claims its clients again (`reclaim`) and the newer connection stays.
 */
/** The scripts defined below, as ioredis adds them to a pipeline. */
interface Scripts {
  credbrokerClaimClean(...args: (string | number)[]): unknown;
  credbrokerRelease(key: string, claim: string): unknown;
}

export class Ownership {
  private readonly claims = new WeakMap<Client, string>();
  private seq = 0;
  private aedes: Aedes | null = null;
  private readonly renewer: NodeJS.Timeout;
  /** Claims and releases go to Redis in batches, one write each (command-batch.ts). */
  private readonly batch: CommandBatch;

  constructor(
    private readonly redis: Redis,
    private readonly channel: TakeoverChannel,
    private readonly brokerId: string,
    private readonly log: Logger,
    private readonly count: (event: TakeoverEvent) => void,
  ) {
    redis.defineCommand('credbrokerRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('credbrokerReclaim', { numberOfKeys: 1, lua: RECLAIM });
    redis.defineCommand('credbrokerClaimClean', { numberOfKeys: 5, lua: CLAIM_CLEAN });
    this.batch = new CommandBatch(redis);
    this.renewer = setInterval(() => this.renew(), RENEW_MS).unref();
  }

  /** Stops renewing (the bus closes): the claims left lapse by themselves. */
  close(): void {
    clearInterval(this.renewer);
  }

  /** Claims on every client aedes registers, releases on every one it lets go, and answers takeovers addressed to this broker. */
  attach(aedes: Aedes): Promise<void> {
    this.aedes = aedes;
    // A clean session claims from the store (claimClean), as its CONNECT drops a previous session.
    aedes.on('client', (c) => { if (!c.clean) this.claim(c); });
    aedes.on('clientDisconnect', (c) => this.release(c));
    return new Promise((resolve) => {
      this.channel.on(takeoverTopic(this.brokerId), (packet, done) => {
        this.takeover(aedes, packet.payload);
        done();
      }, () => resolve());
    });
  }

  /**
   * After a Redis outage (claims made during it failed; a Redis that restarted empty
   * lost them all): every client here claims its id again, and of two connections
   * of one device left on two brokers by the outage, the newer stays.
   */
  reclaim(): void {
    const reclaim = (this.redis as unknown as { credbrokerReclaim(key: string, claim: string, at: number, ttl: number): Promise<string | null> }).credbrokerReclaim.bind(this.redis);
    for (const client of this.clients()) {
      const claim = this.claims.get(client);
      if (!claim) continue;
      reclaim(claimKey(client.id), claim, claimedAt(claim), CLAIM_TTL_MS).then((res) => {
        if (res === 'lost') {
          this.count('closed');
          client.close();
        } else if (res) this.displace(client.id, res);
      }, () => this.count('claim_failed'));
    }
  }

  /**
   * Every claim this broker holds, its TTL renewed in one pipeline. A key that has
   * passed to another broker's newer claim meanwhile is renewed too: harmless, that
   * connection here is being closed by the takeover.
   */
  private renew(): void {
    const pipe = this.redis.pipeline();
    for (const client of this.clients()) if (this.claims.has(client)) pipe.pexpire(claimKey(client.id), CLAIM_TTL_MS);
    // Redis away: the reclaim when it is back sets every key again.
    if (pipe.length > 0) pipe.exec().catch(() => {});
  }

  /** Public in aedes 1.2 (`clients`, keyed by client id), not in its types. */
  private clients(): Client[] {
    return Object.values((this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients ?? {});
  }

  private claim(client: Client): void {
    const claim = `${this.brokerId}|${++this.seq}|${Date.now()}`;
    this.claims.set(client, claim);
    this.batch.run<string | null>((p) => p.set(claimKey(client.id), claim, 'PX', CLAIM_TTL_MS, 'GET')).then((previous) => {
      if (previous) this.displace(client.id, previous);
    }, () => this.count('claim_failed'));
  }

  /**
   * A clean session's claim, in one script with the drop of the previous
   * persistent session of its id (`keys`): resolves to that session's
   * subscription filters (none: there was none), rejects when Redis fails.
   */
  async claimClean(client: Client, keys: SessionKeys): Promise<string[]> {
    const claim = `${this.brokerId}|${++this.seq}|${Date.now()}`;
    this.claims.set(client, claim);
    try {
      const [previous, filters] = await this.batch.run<[string | null, string[]]>((p) => (p as unknown as Scripts).credbrokerClaimClean(claimKey(client.id), keys.subscriptions, keys.queue, keys.incoming, keys.index, claim, CLAIM_TTL_MS, client.id));
      if (previous) this.displace(client.id, previous);
      return filters;
    } catch (err) {
      this.count('claim_failed');
      throw err;
    }
  }

  /** Tells the broker that made `previous` that its connection of `clientId` is taken over. */
  private displace(clientId: string, previous: string): void {
    const owner = previous.slice(0, previous.indexOf('|'));
    if (owner === this.brokerId) return; // aedes closed that one here already
    this.channel.emit({ topic: takeoverTopic(owner), payload: Buffer.from(JSON.stringify({ clientId, claim: previous })) });
    this.count('sent');
  }

  private release(client: Client): void {
    const claim = this.claims.get(client);
    if (!claim) return;
    this.claims.delete(client);
    this.batch.run((p) => (p as unknown as Scripts).credbrokerRelease(claimKey(client.id), claim))
      .catch(() => {}); // Redis down: the next claim of this id overwrites the key
  }

  private takeover(aedes: Aedes, payload: Buffer | string): void {
    let msg: { clientId?: unknown; claim?: unknown };
    try {
      msg = JSON.parse(payload.toString()) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.clientId !== 'string') return;
    // Public in aedes 1.2 (`clients`, keyed by client id), not in its types.
    const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[msg.clientId];
    if (!client || this.claims.get(client) !== msg.claim) {
      this.count('stale');
      return;
    }
    this.count('closed');
    this.log.debug({ event: 'session.taken_over', device: msg.clientId }, 'session closed: the device connected to another broker');
    client.close();
  }
}
