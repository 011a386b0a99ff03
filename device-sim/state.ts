/** What the run observed: the raw material of the verdicts (invariants.ts) and the report. */
import type { ClaimObservations } from './claims.js';

export type Cohort = 'steady' | 'offline' | 'revoke' | 'probe' | 'nonRenewing';

export interface OfflineRecord {
  wentAt: number | null;
  /** Expiry of the access token held while offline. */
  tokenExpAt: number | null;
  returnAt: number | null;
  cameBackAt: number | null;
  /** `via` of each 'connected' event after the return. */
  via: string[];
  skipped: string | null;
  error: string | null;
}

export interface RevokeRecord {
  /**
   * When the revoking transaction began. The broker can learn of its commit (a
   * PostgreSQL NOTIFY) and kick the device before the revoker hears back: from
   * here on, a disconnect, a refused CONNECT or a refused renewal is the revocation's.
   */
  startedAt: number | null;
  commitAt: number | null;
  wasConnected: boolean;
  kickedAt: number | null;
  /** A successful CONNECT after the revocation: must never happen. */
  reconnectedAt: number | null;
  retries: { secret: 'token' | 'refresh'; code: number }[];
  retriesSkipped: number;
  /** Refusals the device's own client saw after the revocation (expected). */
  refusedAfter: number;
}

export interface ProbeRecord {
  victim: string;
  ownSubscribe: number | null;
  subscribes: { filter: string; granted: number | null; error?: string }[];
  /** CONNACK code for a CONNECT with the victim's client id; null = not attempted (budget). */
  takeover: number | null;
  publishSentAt: number | null;
  publishKickedAt: number | null;
  /** Messages of other devices delivered to the probe (a granted wildcard subscription). */
  foreignMessages: number;
  done: boolean;
  error: string | null;
}

export interface NonRenewRecord {
  connectedAt: number | null;
  expAt: number;
  closedAt: number | null;
}

export interface DeviceRecord {
  readonly id: string;
  readonly cohort: Cohort;
  connects: number;
  connectMs: number | null;
  connectError: string | null;
  /** Accepted claims of this device (a `--claim` run: exactly one). */
  claimed: number;
  renewals: number;
  published: number;
  unexpectedDisconnects: { at: number; reason: string }[];
  unexpectedRefusals: number[];
  errors: string[];
  offline?: OfflineRecord;
  revoke?: RevokeRecord;
  probe?: ProbeRecord;
  nonRenew?: NonRenewRecord;
}

export interface ForbiddenDelivery {
  readonly topic: string;
  readonly from: string | null;
  readonly probe: boolean;
  readonly at: number;
}

export interface ObserverRecord {
  available: boolean;
  unavailableReason: string | null;
  messages: number;
  forbidden: ForbiddenDelivery[];
  /** Last delivery time per device (topic `devices/<id>/...`). */
  lastSeen: Map<string, number>;
  disconnects: number;
}

export interface Observations {
  readonly devices: Map<string, DeviceRecord>;
  readonly observer: ObserverRecord;
  /** Sessions still alive after their token's exp + leeway + slack (watchdog over the renewing clients). */
  readonly expiryViolations: { id: string; expAt: number; seenAt: number }[];
  /** Unexpected errors not tied to one device. */
  readonly errors: string[];
  readonly latency: { connect: number[]; renewal: number[]; revokeKick: number[] };
  counts: {
    publishes: number; renewals: number; renewRejected: number; refusals: number; subscribeDenials: number;
    publishKicks: number; revocationKicks: number; expiryKicks: number; connects: number;
  };
  budget: { used: number; skipped: number };
  startedAt: number;
  /** When the initial connect wave finished: the scenario clock starts here. */
  clockStartAt: number;
  endAt: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number } | null;
  /** A `--claim` run's claim probes and registry facts (null otherwise). */
  readonly claims: ClaimObservations | null;
}

export function newDeviceRecord(id: string, cohort: Cohort): DeviceRecord {
  return { id, cohort, connects: 0, connectMs: null, connectError: null, claimed: 0, renewals: 0, published: 0, unexpectedDisconnects: [], unexpectedRefusals: [], errors: [] };
}
