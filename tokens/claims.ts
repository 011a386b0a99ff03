import type { DeviceId, Jti } from '../registry/index.js';

/** The ACL a token carries, `{device}` already substituted. */
export interface AclClaim {
  readonly pub: readonly string[];
  readonly sub: readonly string[];
}

/** The claims of a credbroker access token (SPEC "Identifiers and tokens"). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly aud: string;
  readonly sub: DeviceId;
  readonly iat: number;
  readonly exp: number;
  readonly jti: Jti;
  readonly acl: AclClaim;
  /**
   * A grant's token only (`sub` = `grant:NAME`): why it was granted, for the
   * broker's audit rows. Not secret: the holder can read it.
   */
  readonly reason?: string;
}
