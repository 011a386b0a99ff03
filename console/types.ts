// The API's answers as the console reads them (SPEC "Operators, the API and the console").
// Times are epoch milliseconds or ISO 8601 strings; ui.tsx `when` reads both.

type Time = number | string | null;

export interface DeviceRow {
  readonly id: string;
  readonly profile: string;
  readonly status: 'active' | 'revoked';
  readonly connected?: boolean;
  readonly revokedReason?: string | null;
  readonly revokedAt?: Time;
  readonly lastSeenAt?: Time;
  readonly createdAt?: Time;
  readonly credentialExpiresAt?: Time;
}

/** One page of a listing: the rows under their own name, and the cursor of the next page (null at the end). */
export type Page<K extends string, T> = Readonly<Record<K, T[]>> & { readonly next: string | null };

export interface LiveToken {
  readonly jti: string;
  readonly expiresAt: Time;
  readonly issuedAt?: Time;
}

/** A live session as the broker's `/sessions` lists it. */
export interface SessionRow {
  readonly deviceId: string;
  readonly kind: string;
  readonly transport: string;
  readonly address: string;
  readonly connectedAt: Time;
  readonly expiresAt: Time;
}

export interface AuditRow {
  readonly id?: number;
  readonly at: Time;
  readonly actor: string;
  readonly action: string;
  readonly deviceId?: string | null;
  readonly details?: Record<string, unknown> | null;
}

export interface RefreshState {
  readonly state: string;
  readonly issuedAt?: Time;
  readonly expiresAt?: Time;
  readonly usedAt?: Time;
}

export interface DeviceDetail {
  readonly device: DeviceRow;
  readonly liveTokens: readonly LiveToken[];
  /** The live session; null when not connected. */
  readonly session: SessionRow | null;
  readonly refreshCredentials: readonly RefreshState[];
  readonly recentAudit: readonly AuditRow[];
}

export interface RatePoint {
  readonly at: Time;
  readonly connectsPerMinute: number;
  readonly renewalsPerMinute: number;
}

export interface Stats {
  readonly devices: Readonly<Record<string, number>>;
  readonly sessions: number;
  readonly rates: readonly RatePoint[];
}

export interface Claim {
  readonly name: string;
  readonly profile: string;
  readonly maxDevices?: number | null;
  readonly used?: number;
  readonly expiresAt?: Time;
  readonly revokedAt?: Time;
  readonly state?: string;
}

export interface Grant {
  readonly name: string;
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly reason?: string | null;
  readonly within?: string | null;
  readonly issuedAt?: Time;
  readonly expiresAt?: Time;
  readonly revokedAt?: Time;
  readonly status?: string;
}

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly status: string;
  readonly createdAt?: Time;
  readonly retiredAt?: Time;
  readonly verifyUntil?: Time;
}
