import type { BrokerConfig } from './config.js';
import type { FdLimit } from './fd-limit.js';
import type { LimiterName } from './rate-limit.js';

/**
 * The broker's resource limits in one place: what each bound is, derived from
 * the settings once at start-up. The mechanisms live in files of their own
 * (`packet-guard.ts`, `outbound-queue.ts`, `retained.ts`, `socket-limits.ts`,
 * `verify-budget.ts`, `subscription-limit.ts`, `verified-tokens.ts`); each counts in a metric when it bites.
 */

/**
 * Room a CONNECT needs beyond its password: protocol name and flags (10 bytes),
 * client id and username (128-character device ids, `claim:`/`grant:` names),
 * and a small last will (topic and payload). A device's will is a status line,
 * not a data upload: a larger one belongs in a PUBLISH after CONNACK.
 */
export const CONNECT_EXTRA_BYTES = 4096;

/** An MQTT fixed header is at most 5 bytes (1 type byte, a 4-byte remaining length). */
export const FIXED_HEADER_MAX_BYTES = 5;

/** The largest remaining length MQTT 3.1.1 can encode (§2.2.3). */
export const MQTT_MAX_REMAINING_LENGTH = 268_435_455;

export interface WireLimits {
  /** Remaining length allowed for any packet of an authenticated connection. */
  readonly maxPacketBytes: number;
  /**
   * Remaining length allowed for every packet before the CONNECT has been
   * accepted: the CONNECT itself and anything pipelined behind it. An
   * unauthenticated socket can never make the broker buffer more than this.
   */
  readonly connectPacketBytes: number;
}

export interface QueueLimits {
  /** Messages the broker holds for one client before it drops QoS 0 to it. */
  readonly maxQueuedMessages: number;
  /** Bytes the broker holds for one client before it drops QoS 0 to it. */
  readonly maxQueuedBytes: number;
  /** A client over `maxQueuedBytes` this long (ms) is disconnected. */
  readonly queueStallMs: number;
  /**
   * A client over this many bytes is disconnected at once: QoS 1 and 2 are not
   * dropped, so without a hard ceiling a QoS 1 flood would grow the queue at
   * the publisher's rate for all of `queueStallMs`.
   */
  readonly hardQueuedBytes: number;
}

export function wireLimits(config: BrokerConfig): WireLimits {
  return {
    maxPacketBytes: config.maxPacketBytes,
    connectPacketBytes: config.maxPasswordBytes + CONNECT_EXTRA_BYTES,
  };
}

export function queueLimits(config: BrokerConfig): QueueLimits {
  return {
    maxQueuedMessages: config.maxQueuedMessages,
    maxQueuedBytes: config.maxQueuedBytes,
    queueStallMs: config.queueStallMs,
    hardQueuedBytes: 2 * config.maxQueuedBytes,
  };
}

/**
 * The WebSocket frame cap: one frame may carry the largest packet allowed,
 * header included (MQTT.js sends one packet per frame). Packets that span
 * frames are bounded by the packet guard, which reads the MQTT fixed header
 * across frames; this bound only stops one frame from being buffered whole
 * before that header has been seen.
 */
export function wsMaxFrameBytes(limits: WireLimits): number {
  return Math.max(limits.maxPacketBytes, limits.connectPacketBytes) + FIXED_HEADER_MAX_BYTES;
}

export interface RetainedLimits {
  /** Retained messages one device may own (the last retained publish on a topic owns it). */
  readonly perDevice: number;
  /** Bytes of retained payload one device may own. */
  readonly bytesPerDevice: number;
  /** Largest payload kept as a retained message. */
  readonly payloadBytes: number;
}

export function retainedLimits(config: BrokerConfig): RetainedLimits {
  return {
    perDevice: config.maxRetainedPerDevice,
    bytesPerDevice: config.maxRetainedBytesPerDevice,
    payloadBytes: config.maxRetainedPayloadBytes,
  };
}

// ---- Per-key rate limits (rate-limit.ts)

export interface RateSetting {
  readonly burst: number;
  readonly perSecond: number;
}

/** Each per-key limit's bucket: a broker builds its limiters by these, and a node's primary its node-wide buckets. */
export function rateLimits(config: BrokerConfig): Record<LimiterName, RateSetting> {
  return {
    authFailures: { burst: config.authFailBurst, perSecond: config.authFailPerSec },
    deviceConnects: { burst: config.deviceConnectBurst, perSecond: config.deviceConnectPerSec },
    renewals: { burst: config.renewBurst, perSecond: config.renewPerSec },
    claimRequests: { burst: config.claimBurst, perSecond: config.claimPerSec },
    claimAddresses: { burst: config.claimAddressBurst, perSecond: config.claimAddressPerSec },
    claimConnects: { burst: config.claimConnectBurst, perSecond: config.claimConnectPerSec },
    claimConnectAddresses: { burst: config.claimConnectAddressBurst, perSecond: config.claimConnectAddressPerSec },
  };
}

// ---- Sockets that have not authenticated yet (socket-limits.ts)

/** Most unauthenticated sockets `auto` allows: each costs an aedes client and parser (a few KiB) besides its descriptor. */
const AUTO_CEILING = 10_000;
/** `auto` where the descriptor limit cannot be read (not Linux): a quarter of a common soft limit of 4096. */
const AUTO_UNKNOWN = 1024;

export interface UnauthenticatedLimits {
  /** Pending sockets in total; at the cap the oldest gives way. */
  readonly max: number;
  /** Pending sockets per address (IPv6: per /64). */
  readonly perAddress: number;
}

/** `maxUnauthenticated: "auto"` is a quarter of the open-files limit (the rest for authenticated devices and the registry), at most 10,000. */
export function unauthenticatedLimits(config: BrokerConfig, fd: FdLimit | null): UnauthenticatedLimits {
  const auto = fd ? Math.max(1, Math.min(AUTO_CEILING, Math.floor(fd.soft / 4))) : AUTO_UNKNOWN;
  return { max: config.maxUnauthenticated === 'auto' ? auto : config.maxUnauthenticated, perAddress: config.maxUnauthenticatedPerAddress };
}

// ---- Claim sessions (claim-session.ts, claim.ts)

/** A claim session is closed this long after its CONNECT at the latest (SPEC "Provisioning by claim"). */
export const CLAIM_SESSION_MS = 60_000;
/** After its answer, a claim session is closed once this has passed (the answer's delivery must not be cut off). */
export const CLAIM_ANSWER_GRACE_MS = 2_000;
/**
 * How long a claim session holds its id's lock at most (claim-locks.ts): its
 * whole life and a margin for a late deadline sweep, so that the lock outlives
 * the session; a lock nobody released (a node killed) lapses after it.
 */
export const CLAIM_LOCK_MS = CLAIM_SESSION_MS + 10_000;

// ---- Verified-token cache (verified-tokens.ts)

/**
 * Entries of the verified-token cache: one per accepted access token, about
 * 0.5 KiB each (the token's claims and a 32-byte digest). The default covers
 * `maxConnections`, so a whole fleet reconnecting after a blip finds its tokens.
 */
export function verifiedTokenCacheEntries(config: BrokerConfig): number {
  return config.verifiedTokenCache;
}
