import type { Client } from 'aedes';
import { compileAcl, firstReserved } from '../acl/index.js';
import { connackCodeFor } from '../errors/map.js';
import { CredbrokerError, CredentialError, isCredbrokerError, type ErrorCode } from '../errors/index.js';
import { checkRefreshCredential } from '../operations/index.js';
import { GRANT_PREFIX, isDeviceId, isGrantPrincipal, type DeviceId, type Jti } from '../registry/index.js';
import { looksLikeRefreshCredential, registryVerifyOptions, verifyAccessToken, type VerifiedToken, type VerifyKey, type VerifyOptions } from '../tokens/index.js';
import { looksLikeClaimCredential, REFRESH_PREFIX } from '../tokens/index.js';
import { claimNameOf } from '../protocol/claim.js';
import { claimSession } from './claim-session.js';
import { addressKey, remoteAddress } from './address.js';
import { alreadyLogged } from './logged-error.js';
import { auditGrantConnect, grantSession } from './grant-session.js';
import type { BrokerContext } from './context.js';
import { clearRetainedOf } from './retained.js';
import { sessionAcl, type Session } from './session.js';
import type { AcceptedToken } from './verified-tokens.js';

type Done = (error: (Error & { returnCode: number }) | null, success: boolean | null) => void;

/**
 * Refusals that are not failed logins: the credential was not checked (throttled, over
 * the budget, the registry unreachable), or was valid (a flapping device).
 */
const NOT_FAILED = new Set(['throttled', 'verify_budget', 'connect_rate', 'registry_unavailable', 'claim_connect_rate', 'claim_session_held', 'claim_exhausted', 'claim_not_clean', 'session_store_unavailable']);
/** Refusals of a flood, refused unchecked: only counted, into one summary row per address and window. */
const FLOOD = new Set(['throttled', 'verify_budget', 'claim_connect_rate']);

/** How long a refresh-credential session may stay to renew. */
const REFRESH_SESSION_MS = 120_000;

/** A CONNECT refused before (or instead of) a credential check: `code` gives its CONNACK (errors/map.ts), `reason` its metric and audit label. */
class Refusal extends CredbrokerError {
  constructor(code: ErrorCode, readonly reason: string) {
    super(code, reason);
  }
}

/**
 * The aedes `authenticate` hook (SPEC "Connecting"). Cheap checks first —
 * address throttle, sizes, client id, the node-wide budget of checks for
 * addresses that failed recently (verify-budget.ts) — so that no signature
 * work is spent on an address that is being throttled; then the token (or
 * refresh credential). Callback style on purpose: an async hook would turn a
 * throw into an unhandled rejection (moscajs/aedes#379). A token CONNECT is
 * decided synchronously, from memory; only a refresh-credential CONNECT waits
 * on the registry, and answers from a promise that carries its own catch.
 */
export function createAuthenticate(ctx: BrokerContext) {
  // Label children bound once: `inc({ result, reason })` would hash and validate the labels on every CONNECT.
  const accepted = {
    token: ctx.metrics.authResults.labels('ok', 'token'),
    refresh: ctx.metrics.authResults.labels('ok', 'refresh'),
    claim: ctx.metrics.authResults.labels('ok', 'claim'),
    grant: ctx.metrics.authResults.labels('ok', 'grant'),
  };
  const verifyTime = ctx.metrics.verifySeconds.labels();
  // Built once per issuer (it is replaced when the keys rotate), not per CONNECT.
  let optsFor = ctx.issuer;
  let verifyOpts = registryVerifyOptions(optsFor.settings, ctx.config.leewaySec);
  const options = (): VerifyOptions => {
    if (ctx.issuer !== optsFor) verifyOpts = registryVerifyOptions((optsFor = ctx.issuer).settings, ctx.config.leewaySec);
    return verifyOpts;
  };
  return function authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void {
    // The peer address costs a system call: look it up only when a failure is on record or being recorded.
    let peer: string | undefined;
    const address = () => (peer ??= remoteAddress(client));
    // The failed-login throttle counts an IPv6 /64 as one address, as the socket caps do.
    const throttleKey = () => addressKey(address());
    let deviceForAudit: string | null = null;
    let claimForAudit: string | null = null;
    const refuse = (err: unknown): void => {
      const refusal = toRefusal(err);
      if (!NOT_FAILED.has(refusal.reason)) {
        ctx.authFailures.take(throttleKey());
        ctx.verifyBudget.failed(address());
      }
      ctx.metrics.authResults.inc({ result: 'refused', reason: refusal.reason });
      ctx.tally.event('auth.refused', 'address', address(), deviceForAudit, refusal.reason,
        { reason: refusal.reason, address: address(), ...(claimForAudit !== null && { claim: claimForAudit }) }, !FLOOD.has(refusal.reason));
      // A claim's device is its client id (checked to be a device id), as in the audit row.
      ctx.refusals.refused({ device: claimForAudit === null ? claimedDevice(username) : deviceForAudit, reason: refusal.reason, address: address(), connack: refusal.returnCode });
      done(alreadyLogged(Object.assign(new Error(refusal.reason), { returnCode: refusal.returnCode })), false);
    };
    /** The credential is good: the rest of the checks, then the session is the client's. */
    const admit = (session: Session): void => {
      if (session.kind !== 'claim') {
        // A resumed persistent session brings subscriptions and queued messages granted under an earlier token's ACL.
        session.checkDelivery = client.clean === false;
        // aedes would fail reading the stored session and close the socket without a CONNACK: say "try later" (3) instead.
        if (client.clean === false && !ctx.sessionStoreUp()) throw new Refusal('ERR_SESSION_STORE_UNAVAILABLE', 'session_store_unavailable');
        // Counted only for proven credentials: a stranger who knows a device id must not be able to lock it out.
        if (!ctx.deviceConnects.take(session.deviceId)) throw new Refusal('ERR_THROTTLED', 'connect_rate');
      }
      ctx.sessions.attach(client, session);
      accepted[session.kind].inc();
      // A leaked claim credential could be used for a flood of accepted CONNECTs: summarised per address like refusals.
      if (session.kind === 'claim') ctx.tally.event('claim.connect', 'address', throttleKey(), session.deviceId, 'accepted', { claim: session.claim, address: address() });
      else if (session.grant) auditGrantConnect(ctx, session, address());
      else ctx.audit.seenNow(session.deviceId);
    };
    /** A claim or refresh-credential session: decided by the registry. */
    let pending: Promise<Session> | null = null;
    try {
      if (!ctx.authFailures.isEmpty() && !ctx.authFailures.allows(throttleKey())) throw new Refusal('ERR_THROTTLED', 'throttled');
      if (ctx.aedes && ctx.sessions.size >= ctx.config.maxConnections) throw new Refusal('ERR_SERVER_BUSY', 'connection_cap');
      // `claim:NAME`: a claim session, whose client id is the device id it claims (claim-session.ts).
      const claim = claimNameOf(username);
      if (claim === null && !isUser(username)) throw new Refusal('ERR_BAD_LOGIN', 'bad_username');
      deviceForAudit = claim === null ? username! : isDeviceId(client.id) ? client.id : null;
      if (claim !== null) claimForAudit = claim;
      if (!password || password.length === 0) throw new Refusal('ERR_BAD_LOGIN', 'no_password');
      if (password.length > ctx.config.maxPasswordBytes) throw new Refusal('ERR_BAD_LOGIN', 'password_too_long');
      if (claim === null && client.id !== username) throw new Refusal('ERR_CLIENT_ID_MISMATCH', 'client_id_mismatch');
      // A claim session lives a minute and asks once: a persistent one would only hold state (and the id) past its end.
      if (claim !== null && !client.clean) throw new Refusal('ERR_CLAIM_NOT_CLEAN', 'claim_not_clean');
      if (!ctx.verifyBudget.isEmpty() && !ctx.verifyBudget.allows(address())) throw new Refusal('ERR_THROTTLED', 'verify_budget');
      const secret = password.toString('utf8');
      // A claim credential is no device password: refused before any other work.
      if (claim === null && looksLikeClaimCredential(secret)) throw new Refusal('ERR_BAD_LOGIN', 'claim_credential_as_password');
      if (claim !== null) pending = claimSession(ctx, client, claim, secret, address());
      // A grant has no refresh credential: its user name takes a token only.
      else if (looksLikeRefreshCredential(secret) && !username!.startsWith(GRANT_PREFIX)) pending = refreshSession(ctx, username as DeviceId, secret, address);
      else admit(tokenSession(ctx, username as DeviceId, password, secret, options(), verifyTime));
    } catch (err) {
      return refuse(err);
    }
    if (pending) {
      pending.then((session) => {
        // The client may have gone while the registry answered: aedes ignores `done` then, and it must not hold a session.
        if (client.closed) return;
        try {
          admit(session);
        } catch (err) {
          return refuse(err);
        }
        done(null, true);
      }, refuse).catch((err: unknown) => {
        // Thrown by aedes inside `done`: not a refusal (that would be a second callback).
        ctx.log.error({ event: 'connect.failed', device: deviceForAudit, err: (err as Error).message }, 'CONNECT failed after authentication');
      });
      return;
    }
    // Outside the try: aedes continues the CONNECT synchronously inside `done`, and
    // a throw from there must not be mistaken for a refusal (a second callback).
    done(null, true);
  };
}

/** A device id or a grant's `grant:NAME`, and no credential put in the wrong field. */
function isUser(username: string | undefined): username is DeviceId {
  return (isDeviceId(username) || isGrantPrincipal(username)) && !username.startsWith(REFRESH_PREFIX);
}

/** The user name when it is a well-formed device id, for the log line: never a credential put in the wrong field. */
function claimedDevice(username: string | undefined): string | null {
  return isUser(username) ? username : null;
}

/**
 * A token session. The verification may come from the verified-token cache (a
 * token this broker accepted before, under the same keys and rules); the
 * identity and revocation checks below run on every CONNECT either way.
 */
function tokenSession(ctx: BrokerContext, deviceId: DeviceId, password: Buffer, token: string, opts: VerifyOptions, verifyTime: { observe(seconds: number): void }): Session {
  const keys = ctx.issuer.keyring.verifyKeys;
  const digest = ctx.verifiedTokens.digestOf(password);
  const cached = digest === null ? undefined : ctx.verifiedTokens.get(digest, keys, opts);
  const accepted = cached ?? acceptedToken(deviceId, timedVerify(token, keys, opts, verifyTime));
  // Again for a cached token: it was accepted for its own device, and may be presented for another.
  sameDevice(accepted.sub, deviceId);
  const refusal = ctx.weaken.ignoreRevocations ? null : ctx.revocation.refusal(accepted);
  if (refusal) throw new CredentialError('ERR_TOKEN_REVOKED', refusal);
  if (digest !== null && cached === undefined) ctx.verifiedTokens.remember(digest, accepted, keys, opts);
  if (deviceId.startsWith(GRANT_PREFIX)) return grantSession(deviceId, accepted);
  return {
    deviceId, kind: 'token', jti: accepted.jti, kid: accepted.kid, connectedAt: Date.now(), expiresAt: accepted.exp * 1000, refreshHash: null, ended: null, checkDelivery: false,
    acl: accepted.compiled,
  };
}

/** What a session needs of a verified token, once it is known to be this device's (what the cache keeps of it). */
function acceptedToken(deviceId: DeviceId, { claims, kid }: VerifiedToken): AcceptedToken {
  sameDevice(claims.sub, deviceId);
  // Signed by a registry key, yet never minted by credbroker (or from a profile stored before `$` patterns were
  // refused): a `$` pattern would reach other devices' renewal and claim topics. Checked before the token is
  // remembered, so a cached token has passed it (it depends on the token's bytes only).
  if (firstReserved(claims.acl) !== null) throw new CredentialError('ERR_TOKEN_ACL_RESERVED', 'token ACL holds a $ pattern');
  // `deviceId`, not the equal `claims.sub`: the session holds that string already, so the entry holds no copy.
  // Compiled once here: a grant gets exactly its patterns, a device its own renewal topics too.
  const grant = deviceId.startsWith(GRANT_PREFIX);
  const compiled = grant ? compileAcl(claims.acl) : sessionAcl(deviceId, claims.acl);
  return { sub: deviceId, jti: claims.jti as Jti, iat: claims.iat, exp: claims.exp, kid, compiled, ...(grant && { acl: claims.acl }), ...(typeof claims.reason === 'string' && { reason: claims.reason }) };
}

function sameDevice(sub: string, deviceId: DeviceId): void {
  if (sub !== deviceId) throw new CredentialError('ERR_IDENTITY_MISMATCH', 'token is for another device');
}

function timedVerify(token: string, keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions, verifyTime: { observe(seconds: number): void }): VerifiedToken {
  const started = performance.now();
  try {
    return verifyAccessToken(token, keys, opts);
  } finally {
    verifyTime.observe((performance.now() - started) / 1000);
  }
}

async function refreshSession(ctx: BrokerContext, deviceId: DeviceId, secret: string, address: () => string): Promise<Session> {
  if (ctx.revocation.isDeviceRevoked(deviceId)) throw new CredentialError('ERR_TOKEN_REVOKED', 'device_revoked');
  let rec;
  try {
    rec = await checkRefreshCredential(ctx.issuer, secret, deviceId, { graceMs: ctx.config.refreshGraceMs });
  } catch (err) {
    if (isCredbrokerError(err) && err.code === 'ERR_REFRESH_REPLAYED') {
      ctx.revocation.revokeDevice(deviceId);
      ctx.kicks.kickDevice(deviceId, 'theft');
      clearRetainedOf(ctx, deviceId); // revoked here, by this process: its own feed entry reaches it later
      ctx.log.warn({ event: 'security.refresh_replay', device: deviceId, address: address() }, 'superseded refresh credential replayed: device revoked');
    }
    throw err;
  }
  return {
    deviceId, kind: 'refresh', jti: null, kid: null, connectedAt: Date.now(), expiresAt: Math.min(Date.now() + REFRESH_SESSION_MS, rec.expiresAt),
    refreshHash: rec.hash, ended: null, checkDelivery: false, acl: sessionAcl(deviceId, null),
  };
}

const REASONS: Partial<Record<ErrorCode, string>> = {
  ERR_TOKEN_MALFORMED: 'malformed', ERR_TOKEN_ALG: 'bad_alg', ERR_TOKEN_KID: 'unknown_kid', ERR_TOKEN_SIGNATURE: 'bad_signature',
  ERR_TOKEN_EXPIRED: 'expired', ERR_TOKEN_CLAIM: 'bad_claim', ERR_TOKEN_ACL_RESERVED: 'acl_reserved_pattern', ERR_IDENTITY_MISMATCH: 'identity_mismatch',
  ERR_REFRESH_MALFORMED: 'refresh_malformed', ERR_REFRESH_UNKNOWN: 'refresh_unknown', ERR_REFRESH_REPLAYED: 'refresh_replayed',
  ERR_CREDENTIAL_EXPIRED: 'credential_expired', ERR_DEVICE_NOT_FOUND: 'unknown_device', ERR_REGISTRY_UNAVAILABLE: 'registry_unavailable',
  ERR_CLAIM_MALFORMED: 'claim_malformed', ERR_CLAIM_UNKNOWN: 'claim_unknown', ERR_CLAIM_EXPIRED: 'claim_expired',
  ERR_CLAIM_REVOKED: 'claim_revoked', ERR_DEVICE_EXISTS: 'id_exists', ERR_INVALID_DEVICE_ID: 'bad_client_id',
  ERR_CLAIM_QUOTA: 'claim_exhausted', ERR_CLAIM_SESSION_HELD: 'claim_session_held', ERR_RATE_LIMITED: 'claim_connect_rate',
};

/** Every refusal's CONNACK comes from the one table (errors/map.ts); anything unexpected is "not authorized". */
function toRefusal(err: unknown): { returnCode: number; reason: string } {
  const returnCode = connackCodeFor(err);
  if (err instanceof Refusal) return { returnCode, reason: err.reason };
  if (!isCredbrokerError(err)) return { returnCode, reason: 'internal_error' };
  const reason = err.code === 'ERR_TOKEN_REVOKED' ? (err.message === 'token_revoked' ? 'token_revoked' : 'device_revoked') : (REASONS[err.code] ?? err.code);
  return { returnCode, reason };
}
