import type { Client, PublishPacket } from 'aedes';
import { claimCodeFor } from '../errors/map.js';
import { provisionByClaim } from '../operations/index.js';
import { claimTopics, type ClaimAcceptedBody, type ClaimRejectedBody, type ClaimRejectionCode } from '../protocol/claim.js';
import type { ClaimName } from '../registry/index.js';
import { addressKey, remoteAddress } from './address.js';
import { answerTo } from './answers.js';
import type { BrokerContext } from './context.js';
import { CLAIM_ANSWER_GRACE_MS } from './limits.js';
import { parseRequestObject, requestIdOf } from './request-payload.js';
import type { Session } from './session.js';

/**
 * Answers `$claims/{id}/provision` (SPEC "Provisioning by claim"): a
 * credentials set on `…/accepted`, or a code and message on `…/rejected`. One
 * request per session: the session is closed after its answer (once
 * CLAIM_ANSWER_GRACE_MS has let the answer reach the device). Requests are
 * rate-limited per claim and per address; every answer is counted and
 * audited (`device.provision` by the broker, with the claim and the address,
 * or `claim.rejected`, floods summarised). Never a secret in either.
 */
export class ClaimResponder {
  private readonly asked = new WeakSet<Session>();

  constructor(private readonly ctx: BrokerContext) {}

  handle(client: Client, session: Session, packet: PublishPacket): void {
    const { ctx } = this;
    const obj = parseRequestObject(packet.payload);
    const requestId = requestIdOf(obj);
    const address = remoteAddress(client);
    const reject = (code: ClaimRejectionCode, message: string) => this.answerRejected(client, session, address, { requestId, code, message });
    if (this.asked.has(session)) return reject('bad_request', 'one claim per session: connect again');
    this.asked.add(session);
    // Both buckets are charged: one claim's burst must not drain another's, nor one address a whole line's.
    const claimOk = ctx.claimRequests.take(session.claim!);
    const addressOk = ctx.claimAddresses.take(addressKey(address));
    if (!claimOk || !addressOk) return reject('rate_limited', `too many claims ${claimOk ? 'from this address' : 'through this claim'}: retry later`);
    if (requestId === null) return reject('bad_request', 'payload must be JSON {"requestId": "..."} of at most 1 KiB');
    provisionByClaim(ctx.issuer, { claim: session.claim as ClaimName, deviceId: session.deviceId, address }).then(
      (file) => {
        ctx.metrics.claims.inc({ result: 'accepted', reason: 'provisioned' });
        ctx.log.info({ event: 'claim.accepted', device: session.deviceId, claim: session.claim, address }, 'device provisioned by claim');
        const body: ClaimAcceptedBody = { requestId, ...file };
        this.answer(client, session, claimTopics(session.deviceId).accepted, body);
      },
      (err: unknown) => {
        // Refusals of provisionByClaim carry their wire code (errors/map.ts); anything else is `unavailable`.
        const code = claimCodeFor(err);
        if (code) return reject(code, (err as Error).message);
        ctx.log.error({ event: 'claim.failed', device: session.deviceId, claim: session.claim, err: (err as Error).message }, 'claim failed');
        reject('unavailable', 'the broker could not provision the device now: retry later');
      },
    );
  }

  private answerRejected(client: Client, session: Session, address: string, body: ClaimRejectedBody): void {
    this.ctx.metrics.claims.inc({ result: 'rejected', reason: body.code });
    // Counted, not written, past a few per address and window; rate refusals are only ever counted.
    this.ctx.tally.event('claim.rejected', 'address', addressKey(address), session.deviceId, body.code,
      { claim: session.claim, code: body.code, address }, body.code !== 'rate_limited');
    this.answer(client, session, claimTopics(session.deviceId).rejected, body);
  }

  /** Writes the answer to this client only, then closes the session once it has had time to reach the device. */
  private answer(client: Client, session: Session, topic: string, body: object): void {
    if (session.ended) return;
    answerTo(client, topic, body, () => setTimeout(() => this.ctx.sessions.kick(client, 'claim_answered'), CLAIM_ANSWER_GRACE_MS).unref());
  }
}
