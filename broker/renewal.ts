import type { Client, PublishPacket } from 'aedes';
import { issueAccessToken, reportRefreshReplay, rotateRefreshCredential, type Rotated } from '../operations/index.js';
import type { BrokerContext } from './context.js';
import { sameSubscribeRules, sessionAcl, type Session } from './session.js';
import { tokenTopics } from './token-topics.js';

/** Codes a device may find in a `…/token/rejected` answer (documented in provisioning.md). */
export type RenewRejection =
  | 'ERR_BAD_REQUEST' | 'ERR_FORBIDDEN_TOPIC' | 'ERR_RATE_LIMITED' | 'ERR_DEVICE_REVOKED'
  | 'ERR_CREDENTIAL_EXPIRED' | 'ERR_REFRESH_REPLAYED' | 'ERR_INTERNAL';

const MAX_REQUEST_BYTES = 1024;

interface RenewRequest { requestId: string; ttlSeconds?: number }

/**
 * Answers `$devices/{id}/token/renew` (SPEC "Renewal"): a new access token on
 * `…/accepted` (plus a rotated refresh credential on a refresh session), or a
 * code and message on `…/rejected`. The live session's deadline moves to the new
 * token's expiry. Every answer is audited and counted.
 */
export class RenewalResponder {
  constructor(private readonly ctx: BrokerContext) {}

  /**
   * The refresh credential handed out by a refresh session, kept for the life of
   * that session: a second renewal on the same session (the device timed out
   * waiting for the first answer) must hand out the SAME new credential, not
   * rotate again. Rotating again would supersede a credential the device may
   * already hold, and a device that lost both answers (or got only the first)
   * would then be revoked as a thief on its next connect.
   */
  private readonly rotatedBy = new WeakMap<Session, Rotated>();
  /** Renewals refused for rate, per session: past `renewAbuseLimit` the session is closed. */
  private readonly overRateCount = new WeakMap<Session, number>();

  handle(client: Client, session: Session, topicDevice: string, packet: PublishPacket): void {
    const request = parseRequest(packet.payload);
    const requestId = request?.requestId ?? salvageRequestId(packet.payload);
    const reject = (code: RenewRejection, message: string) => this.reject(session, requestId, code, message);
    // First: every request counts against the rate, malformed ones too (a flood of them is a flood).
    if (!this.ctx.renewals.take(session.deviceId)) return this.overRate(client, session, requestId);
    if (topicDevice !== session.deviceId) return reject('ERR_FORBIDDEN_TOPIC', 'a device may only renew its own token');
    if (!request) return reject('ERR_BAD_REQUEST', 'payload must be JSON {"requestId": "..."} of at most 1 KiB');
    this.renew(client, session, request).catch((err: unknown) => {
      this.ctx.log.error({ event: 'renewal.failed', device: session.deviceId, err: (err as Error).message }, 'renewal failed');
      reject('ERR_INTERNAL', 'renewal failed on the broker');
    });
  }

  private async renew(client: Client, session: Session, req: RenewRequest): Promise<void> {
    const { ctx } = this;
    const { reg } = ctx.issuer;
    const device = reg.devices.get(session.deviceId);
    const now = Date.now();
    if (!device || device.status === 'revoked' || ctx.revocation.isDeviceRevoked(session.deviceId)) {
      // The registry can be ahead of the in-memory state by one watcher poll:
      // take the registry's word now, so the next packet of this session is refused.
      ctx.revocation.revokeDevice(session.deviceId);
      return this.reject(session, req.requestId, 'ERR_DEVICE_REVOKED', 'device is revoked');
    }
    if (session.kind === 'token' && session.jti) {
      // A token revoked on its own (`revoke --token`) must not buy a successor in
      // the window before the watcher kicks its session: kick it now, no answer.
      const rec = reg.tokens.get(session.jti);
      if (rec?.revokedAt != null || ctx.revocation.isTokenRevoked(session.jti)) {
        if (rec) ctx.revocation.revokeToken(session.jti, rec.expiresAt);
        ctx.metrics.renewals.inc({ result: 'rejected', reason: 'token_revoked' });
        ctx.sessions.kick(client, 'token_revoked');
        return;
      }
    }
    if (device.credentialExpiresAt <= now) return this.reject(session, req.requestId, 'ERR_CREDENTIAL_EXPIRED', 'device credential lifetime is over: re-provision the device');
    const profile = reg.profiles.require(device.profile);
    const ttlMs = Math.min(
      req.ttlSeconds ? req.ttlSeconds * 1000 : profile.tokenTtlMs,
      profile.tokenTtlMs,
      device.credentialExpiresAt - now,
    );

    let rotated: Rotated | null = null;
    if (session.kind === 'refresh' && session.refreshHash) {
      const presented = session.refreshHash;
      // Checked and rotated in one write transaction, so a `credbroker revoke` that
      // commits in between cannot leave a fresh credential behind for a revoked device.
      const outcome = reg.write((): Rotated | 'replayed' | 'revoked' => {
        // session.refreshHash stays the credential presented at CONNECT: that is
        // the one the device used, whatever this session has handed out since.
        const rec = reg.refresh.find(presented);
        if (!rec || (rec.state !== 'current' && rec.state !== 'previous')) {
          // Superseded since CONNECT (its successor was used meanwhile): a replay.
          return rec?.state === 'revoked' ? 'revoked' : 'replayed';
        }
        if (reg.devices.get(session.deviceId)?.status !== 'active') return 'revoked';
        const earlier = this.rotatedBy.get(session);
        if (earlier && reg.refresh.find(earlier.hash)?.state === 'current') return earlier; // same session, same successor
        return rotateRefreshCredential(ctx.issuer, rec, now);
      });
      if (outcome === 'replayed') return this.refused(client, session, req.requestId, 'ERR_REFRESH_REPLAYED');
      if (outcome === 'revoked') {
        ctx.revocation.revokeDevice(session.deviceId);
        return this.reject(session, req.requestId, 'ERR_DEVICE_REVOKED', 'device is revoked');
      }
      rotated = outcome;
      this.rotatedBy.set(session, rotated);
    }
    const token = await issueAccessToken(ctx.issuer, session.deviceId, { ttlMs, actor: 'broker', action: session.kind === 'refresh' ? 'token.renew_refresh' : 'token.renew', now });
    if (session.ended) return;
    session.jti = token.jti;
    if (session.kind === 'token') {
      session.kid = token.kid;
      ctx.sessions.extend(client, token.expiresAt);
      // A profile change applies from this renewal on. Subscriptions granted under
      // the old rules stay in aedes, so from now on every delivery is held to the new ones.
      const acl = sessionAcl(session.deviceId, token.acl);
      if (!sameSubscribeRules(session.acl, acl)) session.checkDelivery = true;
      session.acl = acl;
    }
    ctx.metrics.renewals.inc({ result: 'accepted', reason: session.kind });
    this.answer(session.deviceId, tokenTopics(session.deviceId).accepted, {
      requestId: req.requestId,
      accessToken: token.token,
      accessTokenExpiresAt: new Date(token.expiresAt).toISOString(),
      ...(rotated && { refreshCredential: rotated.credential, refreshCredentialExpiresAt: new Date(rotated.expiresAt).toISOString() }),
    });
  }

  /** A replayed refresh credential at renewal: the same theft response as at CONNECT. */
  private refused(client: Client, session: Session, requestId: string, code: 'ERR_REFRESH_REPLAYED'): void {
    this.ctx.revocation.revokeDevice(session.deviceId);
    reportRefreshReplay(this.ctx.issuer, session.deviceId, 'renewal');
    this.reject(session, requestId, code, 'refresh credential was already rotated: device revoked');
    this.ctx.sessions.kick(client, 'theft');
  }

  /**
   * Over the renewal rate: ERR_RATE_LIMITED, and after `renewAbuseLimit` of them
   * on one session the session is closed (a device that keeps asking faster than
   * the rate is broken or hostile; it comes back through the connect rate limit).
   */
  private overRate(client: Client, session: Session, requestId: string | null): void {
    const n = (this.overRateCount.get(session) ?? 0) + 1;
    this.overRateCount.set(session, n);
    this.reject(session, requestId, 'ERR_RATE_LIMITED', 'too many renewals: retry later');
    if (n === this.ctx.config.renewAbuseLimit) {
      this.ctx.audit.add('broker', 'token.renew_abuse', session.deviceId, { refused: n });
      this.ctx.sessions.kick(client, 'renew_abuse');
    }
  }

  private reject(session: Session, requestId: string | null, code: RenewRejection, message: string): void {
    this.ctx.metrics.renewals.inc({ result: 'rejected', reason: code });
    // Counted, not written, past a few per device and window; rate refusals are only ever counted.
    this.ctx.tally.event('token.renew_rejected', 'device', session.deviceId, session.deviceId, code, { code }, code !== 'ERR_RATE_LIMITED');
    this.answer(session.deviceId, tokenTopics(session.deviceId).rejected, { requestId, code, message });
  }

  private answer(deviceId: string, topic: string, body: object): void {
    this.ctx.aedes?.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: false, dup: false }, (err) => {
      if (err) this.ctx.log.warn({ event: 'renewal.answer_failed', device: deviceId }, 'could not publish renewal answer');
    });
  }
}

/** The requestId of a request that is otherwise invalid, so the device can match the rejection. */
function salvageRequestId(payload: Buffer | string): string | null {
  if (payload.length > MAX_REQUEST_BYTES) return null;
  try {
    const id = (JSON.parse(payload.toString()) as { requestId?: unknown } | null)?.requestId;
    return typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : null;
  } catch {
    return null;
  }
}

function parseRequest(payload: Buffer | string): RenewRequest | null {
  if (payload.length > MAX_REQUEST_BYTES) return null;
  try {
    const obj = JSON.parse(payload.toString()) as unknown;
    if (obj === null || typeof obj !== 'object') return null;
    const { requestId, ttlSeconds } = obj as Record<string, unknown>;
    if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 128) return null;
    if (ttlSeconds !== undefined && !(typeof ttlSeconds === 'number' && ttlSeconds > 0)) return null;
    return { requestId, ttlSeconds: ttlSeconds as number | undefined };
  } catch {
    return null;
  }
}
