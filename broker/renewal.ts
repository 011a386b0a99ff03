import type { Client, PublishPacket } from 'aedes';
import { issueAccessToken, reportRefreshReplay, rotateRefreshCredential, type Rotated } from '../operations/index.js';
import { isCredbrokerError } from '../errors/index.js';
import { renewalCodeFor } from '../errors/map.js';
import { answerTo } from './answers.js';
import type { BrokerContext } from './context.js';
import { RenewalAnswers, type AcceptedRenewal } from './renewal-answers.js';
import { parseRequestObject, requestIdOf, salvageRequestId } from './request-payload.js';
import { clearRetainedOf } from './retained.js';
import { sameSubscribeRules, sessionAcl, type Session } from './session.js';
import { tokenTopics, type RenewRejectedBody, type RenewRejectionCode, type RenewRequestBody } from '../protocol/renewal.js';


/**
 * Answers `$devices/{id}/token/renew` (SPEC "Renewal"): a new access token on
 * `…/accepted` (plus a rotated refresh credential on a refresh session), or a
 * code and message on `…/rejected`. The live session's deadline moves to the new
 * token's expiry. Every answer goes to the asking connection only (answers.ts),
 * and is audited and counted. A request re-sent with
 * the same requestId within `renewRepeatWindowMs` gets the same answer again.
 */
export class RenewalResponder {
  private readonly answers: RenewalAnswers;

  constructor(private readonly ctx: BrokerContext) {
    const evicted = ctx.metrics.limitRefusals.labels('renew_answers');
    this.answers = new RenewalAnswers({ windowMs: ctx.config.renewRepeatWindowMs, maxEntries: ctx.config.renewRepeatMaxEntries, onEvict: () => evicted.inc() });
  }

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
    const reject = (code: RenewRejectionCode, message: string) => this.reject(client, session, requestId, code, message);
    // First: every request counts against the rate, malformed ones and repeats too (a flood of them is a flood).
    if (!this.ctx.renewals.take(session.deviceId)) return this.overRate(client, session, requestId);
    if (topicDevice !== session.deviceId) return void reject('ERR_FORBIDDEN_TOPIC', 'a device may only renew its own token');
    if (!request) return void reject('ERR_BAD_REQUEST', 'payload must be JSON {"requestId": "..."} of at most 1 KiB');
    const key = RenewalAnswers.key(session.deviceId, session.kind, request.requestId);
    const earlier = this.answers.get(key);
    const done = earlier ? this.repeat(client, session, request, key, earlier) : this.fresh(client, session, request, key);
    done.catch((err: unknown) => {
      const code = renewalCodeFor(err);
      if (code === 'ERR_UNAVAILABLE') {
        this.ctx.log.warn({ event: 'renewal.unavailable', device: session.deviceId, err: (err as Error).message }, 'renewal refused: registry unavailable');
        return void reject(code, 'the registry is unavailable: retry later');
      }
      if (code !== 'ERR_INTERNAL') return void reject(code, (err as Error).message);
      this.ctx.log.error({ event: 'renewal.failed', device: session.deviceId, err: (err as Error).message }, 'renewal failed');
      reject(code, 'renewal failed on the broker');
    });
  }

  /** A request not seen within the window: renewed; its outcome is kept for repeats. */
  private async fresh(client: Client, session: Session, req: RenewRequestBody, key: string): Promise<void> {
    const outcome = this.renew(client, session, req);
    const kept = outcome.catch(() => null);
    this.answers.set(key, kept);
    // A rejection (or a failure) is not kept: a repeat is decided anew.
    if (!(await kept)) this.answers.forget(key, kept);
    await outcome; // a failure reaches handle(), which answers ERR_INTERNAL
  }

  /**
   * The same requestId again: the same answer again when it can have been lost —
   * on the session that asked, or on a new one that still holds the credential
   * the request was made with — and what it handed out is still good (not
   * revoked, expired, its key alive, its refresh credential not rotated since).
   * Otherwise (e.g. firmware that sends one requestId for ever, already holding
   * the answer's token) the request is decided anew.
   */
  private async repeat(client: Client, session: Session, req: RenewRequestBody, key: string, earlier: Promise<AcceptedRenewal | null>): Promise<void> {
    const a = await earlier;
    const { ctx } = this;
    const usable = a && !session.ended && (a.session === session || a.from === credentialOf(session)) && a.expiresAt > Date.now() && ctx.issuer.keyring.verifyKeys.has(a.kid)
      && !ctx.revocation.isDeviceRevoked(session.deviceId) && !ctx.revocation.isTokenRevoked(a.jti)
      && (a.refreshHash === null || (await ctx.issuer.reg.refresh.find(a.refreshHash))?.state === 'current');
    if (!usable) {
      this.answers.forget(key, earlier);
      return this.fresh(client, session, req, key);
    }
    this.adopt(client, session, a);
    ctx.metrics.renewals.inc({ result: 'repeated', reason: session.kind });
    answerTo(client, tokenTopics(session.deviceId).accepted, a.body);
  }

  /** Decides one request; resolves to what was handed out, or null when it was refused. */
  private async renew(client: Client, session: Session, req: RenewRequestBody): Promise<AcceptedRenewal | null> {
    const { ctx } = this;
    const from = credentialOf(session);
    const { reg } = ctx.issuer;
    const device = await reg.devices.get(session.deviceId);
    const now = Date.now();
    if (!device || device.status === 'revoked' || ctx.revocation.isDeviceRevoked(session.deviceId)) {
      // The registry can be ahead of the in-memory state by one watcher poll:
      // take the registry's word now, so the next packet of this session is refused.
      ctx.revocation.revokeDevice(session.deviceId);
      return this.reject(client, session, req.requestId, 'ERR_DEVICE_REVOKED', 'device is revoked');
    }
    if (session.kind === 'token' && session.jti) {
      // A token revoked (`revoke --token`, with its family) must not buy a successor in
      // the window before the watcher kicks its session: kick it now, no answer.
      const rec = await reg.tokens.get(session.jti);
      if (rec?.revokedAt != null || ctx.revocation.isTokenRevoked(session.jti)) {
        if (rec) ctx.revocation.revokeToken(session.jti, rec.expiresAt);
        return this.tokenRevoked(client);
      }
    }
    if (device.credentialExpiresAt <= now) return this.reject(client, session, req.requestId, 'ERR_CREDENTIAL_EXPIRED', 'device credential lifetime is over: re-provision the device');
    const profile = await reg.profiles.require(device.profile);
    const ttlMs = Math.min(
      req.ttlSeconds ? req.ttlSeconds * 1000 : profile.tokenTtlMs,
      profile.tokenTtlMs,
      device.credentialExpiresAt - now,
    );

    let rotated: Rotated | null = null;
    if (session.kind === 'refresh' && session.refreshHash) {
      const outcome = await this.rotate(session, session.refreshHash, now);
      if (outcome === 'replayed') return this.refused(client, session, req.requestId, 'ERR_REFRESH_REPLAYED');
      if (outcome === 'revoked') {
        ctx.revocation.revokeDevice(session.deviceId);
        return this.reject(client, session, req.requestId, 'ERR_DEVICE_REVOKED', 'device is revoked');
      }
      rotated = outcome;
      this.rotatedBy.set(session, rotated);
    }
    let token;
    try {
      // A token session's renewal joins the family of the token it replaces.
      const renews = session.kind === 'token' ? session.jti ?? undefined : undefined;
      token = await issueAccessToken(ctx.issuer, session.deviceId, { ttlMs, actor: 'broker', action: session.kind === 'refresh' ? 'token.renew_refresh' : 'token.renew', now, renews, read: { device, profile } });
    } catch (err) {
      if (isCredbrokerError(err) && err.code === 'ERR_TOKEN_REVOKED') return this.tokenRevoked(client); // revoked while it was being signed
      throw err;
    }
    if (session.ended) return null;
    const accepted: AcceptedRenewal = {
      jti: token.jti, kid: token.kid, expiresAt: token.expiresAt, acl: token.acl, refreshHash: rotated?.hash ?? null, session, from,
      body: {
        requestId: req.requestId,
        accessToken: token.token,
        accessTokenExpiresAt: new Date(token.expiresAt).toISOString(),
        ...(rotated && { refreshCredential: rotated.credential, refreshCredentialExpiresAt: new Date(rotated.expiresAt).toISOString() }),
      },
    };
    this.adopt(client, session, accepted);
    ctx.metrics.renewals.inc({ result: 'accepted', reason: session.kind });
    answerTo(client, tokenTopics(session.deviceId).accepted, accepted.body);
    return accepted;
  }

  /**
   * Checks the credential a refresh session connected with and rotates it, in one
   * write transaction with the credential's row locked (`findForUpdate`), so a
   * `credbroker revoke` that commits in between cannot leave a fresh credential
   * behind for a revoked device, and of two renewals racing with one credential
   * (on two nodes) exactly one rotates it: the other finds it superseded, a replay.
   */
  private rotate(session: Session, presented: string, now: number): Promise<Rotated | 'replayed' | 'revoked'> {
    return this.ctx.issuer.reg.transaction(async (tx) => {
      // session.refreshHash stays the credential presented at CONNECT: that is
      // the one the device used, whatever this session has handed out since.
      const rec = await tx.refresh.findForUpdate(presented);
      if (!rec || (rec.state !== 'current' && rec.state !== 'previous')) {
        // Superseded since CONNECT (its successor was used meanwhile): a replay.
        return rec?.state === 'revoked' ? 'revoked' : 'replayed';
      }
      if ((await tx.devices.get(session.deviceId))?.status !== 'active') return 'revoked';
      const earlier = this.rotatedBy.get(session);
      if (earlier && (await tx.refresh.find(earlier.hash))?.state === 'current') return earlier; // same session, same successor
      return rotateRefreshCredential(tx, rec, now);
    });
  }

  /** The session now holds the new token: its id, deadline and ACL (a profile change applies from here on). */
  private adopt(client: Client, session: Session, a: AcceptedRenewal): void {
    session.jti = a.jti;
    if (session.kind !== 'token') return;
    session.kid = a.kid;
    this.ctx.sessions.extend(client, a.expiresAt);
    // Subscriptions granted under the old rules stay in aedes: once the rules
    // change, every delivery is held to the new ones (authorizeForward).
    const acl = sessionAcl(session.deviceId, a.acl);
    if (!sameSubscribeRules(session.acl, acl)) session.checkDelivery = true;
    session.acl = acl;
  }

  /** The session's token (or its family) is revoked: no answer, the session is closed. */
  private tokenRevoked(client: Client): null {
    this.ctx.metrics.renewals.inc({ result: 'rejected', reason: 'token_revoked' });
    this.ctx.sessions.kick(client, 'token_revoked');
    return null;
  }

  /** A replayed refresh credential at renewal: the same theft response as at CONNECT. */
  private async refused(client: Client, session: Session, requestId: string, code: 'ERR_REFRESH_REPLAYED'): Promise<null> {
    this.ctx.revocation.revokeDevice(session.deviceId);
    try {
      await reportRefreshReplay(this.ctx.issuer, session.deviceId, 'renewal');
    } catch (err) {
      // Refused and kicked here all the same; other nodes learn of it only from the registry.
      this.ctx.log.error({ event: 'security.refresh_replay_unrecorded', device: session.deviceId, err: (err as Error).message }, 'refresh replay: could not revoke the device in the registry');
    }
    this.reject(client, session, requestId, code, 'refresh credential was already rotated: device revoked');
    this.ctx.sessions.kick(client, 'theft');
    clearRetainedOf(this.ctx, session.deviceId);
    return null;
  }

  /**
   * Over the renewal rate: ERR_RATE_LIMITED, and after `renewAbuseLimit` of them
   * on one session the session is closed (a device that keeps asking faster than
   * the rate is broken or hostile; it comes back through the connect rate limit).
   */
  private overRate(client: Client, session: Session, requestId: string | null): void {
    const n = (this.overRateCount.get(session) ?? 0) + 1;
    this.overRateCount.set(session, n);
    this.reject(client, session, requestId, 'ERR_RATE_LIMITED', 'too many renewals: retry later');
    if (n === this.ctx.config.renewAbuseLimit) {
      this.ctx.audit.add('broker', 'token.renew_abuse', session.deviceId, { refused: n });
      this.ctx.sessions.kick(client, 'renew_abuse');
    }
  }

  private reject(client: Client, session: Session, requestId: string | null, code: RenewRejectionCode, message: string): null {
    this.ctx.metrics.renewals.inc({ result: 'rejected', reason: code });
    // Counted, not written, past a few per device and window; rate refusals are only ever counted.
    this.ctx.tally.event('token.renew_rejected', 'device', session.deviceId, session.deviceId, code, { code }, code !== 'ERR_RATE_LIMITED');
    const body: RenewRejectedBody = { requestId, code, message };
    answerTo(client, tokenTopics(session.deviceId).rejected, body);
    return null;
  }
}

/** What a session proved itself with: its token's jti, or its refresh credential's hash. */
function credentialOf(session: Session): string | null {
  return session.kind === 'token' ? session.jti : session.refreshHash;
}

function parseRequest(payload: Buffer | string): RenewRequestBody | null {
  const obj = parseRequestObject(payload);
  const requestId = requestIdOf(obj);
  if (!obj || requestId === null) return null;
  const { ttlSeconds } = obj;
  if (ttlSeconds !== undefined && !(typeof ttlSeconds === 'number' && ttlSeconds > 0)) return null;
  return { requestId, ttlSeconds: ttlSeconds as number | undefined };
}
