import type { SimOptions } from './options.js';
import { registryMismatch } from './diagnosis.js';
import { claimInvariants } from './claim-invariants.js';
import type { DeviceRecord, Observations } from './state.js';

export type Verdict = 'pass' | 'fail' | 'skipped';

/** Stable ids: tests and scripts branch on these, people read `name`. */
export type InvariantId =
  | 'no-forbidden-publish-delivered'
  | 'forbidden-publish-disconnects'
  | 'forbidden-subscribe-refused'
  | 'client-id-takeover-refused'
  | 'no-session-past-expiry'
  | 'renewing-devices-stayed-connected'
  | 'offline-devices-came-back'
  | 'revoked-devices-kicked'
  | 'no-unexpected-error'
  | 'claimed-devices-provisioned-once'
  | 'no-claim-outside-rules'
  | 'cloned-claim-cannot-take-id';

export interface InvariantResult {
  readonly id: InvariantId;
  readonly name: string;
  readonly verdict: Verdict;
  /** One line: what was checked, or why it failed / was skipped. */
  readonly detail: string;
  /** Up to 5 examples of violations. */
  readonly examples: string[];
}

const MAX_EXAMPLES = 5;

function result(id: InvariantId, name: string, checked: number, failures: string[], okDetail: string, skipWhy?: string): InvariantResult {
  if (skipWhy !== undefined && checked === 0) return { id, name, verdict: 'skipped', detail: skipWhy, examples: [] };
  if (failures.length > 0) {
    return { id, name, verdict: 'fail', detail: `${failures.length} violation(s); ${okDetail}`, examples: failures.slice(0, MAX_EXAMPLES) };
  }
  return { id, name, verdict: 'pass', detail: okDetail, examples: [] };
}

const list = (obs: Observations) => [...obs.devices.values()];

/** Every verdict of a run (SPEC "device-sim": the report checks each invariant). */
export function evaluateInvariants(obs: Observations, opts: SimOptions): InvariantResult[] {
  const devices = list(obs);
  return [
    forbiddenPublishDelivered(obs, devices),
    forbiddenPublishDisconnects(devices, opts),
    forbiddenSubscribeRefused(devices),
    clientIdTakeover(devices),
    noSessionPastExpiry(obs, devices, opts),
    renewingStayedConnected(devices),
    offlineCameBack(devices),
    revokedKicked(obs, devices, opts),
    noUnexpectedError(obs, devices),
    ...claimInvariants(obs, devices),
  ];
}

function forbiddenPublishDelivered(obs: Observations, devices: DeviceRecord[]): InvariantResult {
  const name = 'no forbidden publish delivered';
  const o = obs.observer;
  if (!o.available) return { id: 'no-forbidden-publish-delivered', name, verdict: 'skipped', detail: `no observer: ${o.unavailableReason ?? 'unavailable'}`, examples: [] };
  const failures = o.forbidden.map((f) => `${f.probe ? 'probe' : 'spoofed'} publish on ${f.topic} by ${f.from ?? '?'} delivered to the observer`);
  // Positive control: an observer that saw nothing would pass trivially.
  const published = devices.filter((d) => d.published > 0);
  const seen = published.filter((d) => o.lastSeen.has(d.id)).length;
  if (published.length > 0 && seen < Math.ceil(published.length * 0.9)) {
    failures.push(`observer saw telemetry from only ${seen}/${published.length} publishing devices: the check is blind`);
  }
  const probes = devices.filter((d) => d.probe?.publishSentAt != null).length;
  return result('no-forbidden-publish-delivered', name, 1, failures,
    `observer got ${o.messages} messages from ${seen}/${published.length} publishing devices; ${probes} forbidden probe publishes, ${o.forbidden.length} delivered`);
}

function forbiddenPublishDisconnects(devices: DeviceRecord[], opts: SimOptions): InvariantResult {
  const id = 'forbidden-publish-disconnects';
  const name = 'forbidden publish closes the connection';
  const probes = devices.filter((d) => d.probe?.publishSentAt != null);
  if (opts.deniedPublish === 'drop') {
    return { id, name, verdict: 'skipped', detail: 'broker policy is "drop": a refused publish is dropped, the connection stays', examples: [] };
  }
  const failures: string[] = [];
  for (const d of probes) {
    const p = d.probe!;
    if (p.publishKickedAt === null) failures.push(`${d.id}: still connected after a publish to devices/${p.victim}/telemetry`);
    else if (p.publishKickedAt - p.publishSentAt! > opts.kickSlackMs) failures.push(`${d.id}: closed ${p.publishKickedAt - p.publishSentAt!} ms after the forbidden publish`);
  }
  return result(id, name, probes.length, failures, `${probes.length - failures.length}/${probes.length} probes disconnected within ${opts.kickSlackMs} ms`, 'no probe published (probe cohort empty)');
}

function forbiddenSubscribeRefused(devices: DeviceRecord[]): InvariantResult {
  const failures: string[] = [];
  let checked = 0;
  let foreign = 0;
  for (const d of devices) {
    const p = d.probe;
    if (!p) continue;
    for (const s of p.subscribes) {
      if (s.granted === null) continue;
      checked++;
      if (s.granted !== 128) failures.push(`${d.id}: SUBSCRIBE ${s.filter} granted QoS ${s.granted} (expected 0x80)`);
    }
    if (p.ownSubscribe !== null && p.ownSubscribe === 128) failures.push(`${d.id}: its own devices/${d.id}/commands/# was refused (positive control)`);
    if (p.foreignMessages > 0) failures.push(`${d.id}: received ${p.foreignMessages} messages of other devices`);
    foreign += p.foreignMessages;
  }
  return result('forbidden-subscribe-refused', 'every forbidden subscribe refused', checked, failures,
    `${checked - failures.filter((f) => f.includes('granted')).length}/${checked} forbidden filters got SUBACK 0x80; ${foreign} foreign messages leaked`, 'no probe subscribed (probe cohort empty)');
}

function clientIdTakeover(devices: DeviceRecord[]): InvariantResult {
  const failures: string[] = [];
  let checked = 0;
  let skipped = 0;
  let inconclusive = 0;
  for (const d of devices) {
    const p = d.probe;
    if (!p || !p.done) continue;
    if (p.takeover === null) { skipped++; continue; }
    checked++;
    if (p.takeover < 0) { inconclusive++; continue; } // no CONNACK at all (timeout, network): reported under no-unexpected-error
    if (p.takeover !== 5) failures.push(`${d.id}: CONNECT with client id ${p.victim} got CONNACK ${p.takeover} (expected 5)${p.takeover === 0 ? ': TAKEOVER ACCEPTED' : ''}`);
  }
  return result('client-id-takeover-refused', "a CONNECT with another device's client id refused", checked, failures,
    `${checked - failures.length}/${checked} got CONNACK 5${skipped ? ` (${skipped} not attempted: failed-auth budget)` : ''}${inconclusive ? ` (${inconclusive} got no CONNACK: see no-unexpected-error)` : ''}`, skipped ? 'not attempted (failed-auth budget)' : 'no probe got that far (see the other verdicts)');
}

function noSessionPastExpiry(obs: Observations, devices: DeviceRecord[], opts: SimOptions): InvariantResult {
  const failures: string[] = [];
  const limit = opts.leewayMs + opts.kickSlackMs;
  let checked = 0;
  let tooShort = 0;
  for (const d of devices) {
    const n = d.nonRenew;
    if (!n || n.connectedAt === null) continue;
    if (n.closedAt === null) {
      if (obs.endAt < n.expAt + limit) { tooShort++; continue; }
      checked++;
      failures.push(`${d.id}: non-renewing session still open ${obs.endAt - n.expAt} ms after its token expired (limit: leeway ${opts.leewayMs} + ${opts.kickSlackMs} ms)`);
    } else {
      checked++;
      const late = n.closedAt - n.expAt;
      if (late > limit) failures.push(`${d.id}: closed ${late} ms after its token expired (limit ${limit} ms)`);
      else if (late < -opts.kickSlackMs) failures.push(`${d.id}: closed ${-late} ms BEFORE its token expired`);
    }
  }
  const nonRenewFailures = failures.length;
  for (const v of obs.expiryViolations) failures.push(`${v.id}: renewing device's session open ${v.seenAt - v.expAt} ms after its token expired, with no renewal in flight`);
  return result('no-session-past-expiry', "no session alive past its token's expiry + leeway", checked + obs.expiryViolations.length, failures,
    `${checked - nonRenewFailures}/${checked} non-renewing devices closed by exp + ${limit} ms; ${obs.expiryViolations.length} renewing sessions outlived their token${tooShort ? `; ${tooShort} not checkable (run ended before exp + leeway)` : ''}`,
    tooShort ? `run too short: non-renewing tokens outlive it (needs duration ≥ token ttl + leeway + ${opts.kickSlackMs} ms)` : 'no non-renewing device');
}

function renewingStayedConnected(devices: DeviceRecord[]): InvariantResult {
  const renewing = devices.filter((d) => d.cohort !== 'nonRenewing' && d.connectMs !== null);
  const failures: string[] = [];
  let renewals = 0;
  for (const d of renewing) {
    renewals += d.renewals;
    for (const u of d.unexpectedDisconnects) failures.push(`${d.id} (${d.cohort}): unexpected disconnect (${u.reason})`);
  }
  const failedConnect = devices.filter((d) => d.connectError !== null);
  for (const d of failedConnect) failures.push(`${d.id}: never connected: ${d.connectError}`);
  return result('renewing-devices-stayed-connected', 'every renewing device stayed connected', renewing.length + failedConnect.length, failures,
    `${renewing.length} renewing devices, ${renewals} renewals, ${failures.length} unexpected disconnects/failed connects`, 'no renewing device');
}

function offlineCameBack(devices: DeviceRecord[]): InvariantResult {
  const failures: string[] = [];
  let checked = 0;
  let skipped = 0;
  for (const d of devices) {
    const o = d.offline;
    if (!o) continue;
    if (o.skipped) { skipped++; continue; }
    checked++;
    if (o.cameBackAt === null) failures.push(`${d.id}: did not come back${o.error ? `: ${o.error}` : o.returnAt === null ? ' (never returned before the run ended)' : ''}`);
    else if (!o.via.includes('refresh')) failures.push(`${d.id}: came back via ${o.via.join(',') || '?'} instead of its refresh credential`);
  }
  const firstSkip = devices.find((d) => d.offline?.skipped)?.offline?.skipped;
  return result('offline-devices-came-back', 'every offline device came back through its refresh credential', checked, failures,
    `${checked - failures.length}/${checked} came back via refresh${skipped ? ` (${skipped} skipped: ${firstSkip})` : ''}`, firstSkip ? `skipped: ${firstSkip}` : 'offline cohort empty');
}

function revokedKicked(obs: Observations, devices: DeviceRecord[], opts: SimOptions): InvariantResult {
  const failures: string[] = [];
  let checked = 0;
  let retries = 0;
  let retriesSkipped = 0;
  for (const d of devices) {
    const r = d.revoke;
    if (!r || r.commitAt === null) continue;
    checked++;
    retries += r.retries.length;
    retriesSkipped += r.retriesSkipped;
    if (r.wasConnected) {
      if (r.kickedAt === null) failures.push(`${d.id}: still connected at the end, ${obs.endAt - r.commitAt} ms after its revocation`);
      else if (r.kickedAt - r.commitAt > opts.kickSlackMs) failures.push(`${d.id}: kicked ${r.kickedAt - r.commitAt} ms after the revocation commit (limit ${opts.kickSlackMs} ms)`);
    }
    if (r.reconnectedAt !== null) failures.push(`${d.id}: got back in ${r.reconnectedAt - r.commitAt} ms after its revocation`);
    for (const x of r.retries) if (x.code === 0) failures.push(`${d.id}: reconnect with its ${x.secret} accepted after revocation`);
    const last = obs.observer.lastSeen.get(d.id);
    if (obs.observer.available && last !== undefined && last > r.commitAt + opts.kickSlackMs) {
      failures.push(`${d.id}: its traffic was still delivered ${last - r.commitAt} ms after the revocation`);
    }
  }
  return result('revoked-devices-kicked', 'every revoked device kicked within 1 s and never got back in', checked, failures,
    `${checked} revoked; ${retries} reconnect attempts after revocation, ${retries - failures.filter((f) => f.includes('accepted')).length} refused${retriesSkipped ? `, ${retriesSkipped} not attempted before the run ended (failed-auth budget or time)` : ''}`,
    opts.db ? 'revoke cohort empty' : 'no registry (--db): nothing to revoke through');
}

function noUnexpectedError(obs: Observations, devices: DeviceRecord[]): InvariantResult {
  const failures = [...obs.errors];
  const mismatch = registryMismatch(devices);
  if (mismatch) failures.unshift(mismatch);
  let refusals = 0;
  for (const d of devices) {
    for (const e of d.errors) failures.push(`${d.id}: ${e}`);
    for (const code of d.unexpectedRefusals) {
      refusals++;
      failures.push(`${d.id} (${d.cohort}): CONNACK ${code} on a valid credential${code === 5 ? ' (throttled? connect-rate?)' : ''}`);
    }
    if (d.probe?.error) failures.push(`${d.id}: probe failed: ${d.probe.error}`);
    if (d.probe?.takeover != null && d.probe.takeover < 0) failures.push(`${d.id}: client-id probe got no CONNACK (${d.probe.takeover === -2 ? 'closed' : 'error or timeout'})`);
  }
  return result('no-unexpected-error', 'no unexpected error', 1, failures, mismatch ?? `${failures.length} errors (${refusals} unexpected refusals)`);
}
