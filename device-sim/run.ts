import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { DeviceClient } from '../device/index.js';
import { revokeDevices } from '../operations/index.js';
import type { DeviceCredentials } from '../provisioning/index.js';
import type { DeviceId } from '../registry/index.js';
import { FailedAuthBudget } from './budget.js';
import { saveCredentials, type Fleet } from './fleet.js';
import { claimRaw, claimRegistryFacts, claimSourceOf, newClaimObservations, runClaimProbes } from './claims.js';
import { evaluateInvariants } from './invariants.js';
import { connectOnce } from './mqtt-once.js';
import { Observer } from './observer.js';
import type { SimOptions } from './options.js';
import { runProbe } from './probes.js';
import type { Progress } from './progress.js';
import type { SimScenarioReport } from './report.js';
import { Rng } from './rng.js';
import { newDeviceRecord, type Cohort, type DeviceRecord, type Observations } from './state.js';
import { summarize } from './stats.js';

type Phase = 'connecting' | 'online' | 'away' | 'stopping';

/** Extra time a non-kicked device's session may overrun before the watchdog flags it (its tick is 1 s). */
const WATCHDOG_TICK_MS = 1000;

/** Device-sim: the scenario engine behind runSimulation. */
export class Simulation {
  readonly obs: Observations;
  private readonly rng: Rng;
  private readonly clients = new Map<string, DeviceClient>();
  private readonly raw = new Map<string, MqttClient>();
  private readonly phase = new Map<string, Phase>();
  private readonly creds = new Map<string, DeviceCredentials>();
  /** Every device of the fleet in a stable order, and the broker URL each connects to (a `--claim` run's devices have no credentials yet). */
  private readonly ids: string[];
  private readonly urls = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly budget: FailedAuthBudget;
  private readonly flaggedExpiry = new Set<string>();
  /** Sessions seen alive past exp + leeway + slack, not (yet) explained by a renewal in flight. */
  private readonly expiryCandidates = new Map<string, { id: string; expAt: number; seenAt: number }>();
  private readonly cohorts: Record<Cohort, string[]> = { steady: [], offline: [], revoke: [], probe: [], nonRenewing: [] };
  private observer: Observer | null = null;
  private ending = false;
  private endAt = 0;
  private connectWaveMs = 0;

  /** `stop` (Ctrl-C) ends the scenario early; the teardown and report run as usual. */
  constructor(private readonly opts: SimOptions, private readonly fleet: Fleet, private readonly progress: Progress, private readonly stop?: AbortSignal) {
    this.rng = new Rng(opts.seed);
    const devices = fleet.claim?.devices ?? fleet.devices;
    this.ids = devices.map((d) => d.deviceId);
    for (const d of devices) this.urls.set(d.deviceId, d.brokerUrl);
    this.budget = new FailedAuthBudget(opts.failedAuthBurst, opts.failedAuthPerSec);
    this.obs = {
      devices: new Map(),
      observer: { available: false, unavailableReason: 'not started', messages: 0, forbidden: [], lastSeen: new Map(), disconnects: 0 },
      expiryViolations: [], errors: [],
      latency: { connect: [], renewal: [], revokeKick: [] },
      counts: { publishes: 0, renewals: 0, renewRejected: 0, refusals: 0, subscribeDenials: 0, publishKicks: 0, revocationKicks: 0, expiryKicks: 0, connects: 0 },
      budget: { used: 0, skipped: 0 },
      startedAt: Date.now(), clockStartAt: 0, endAt: 0, eventLoopDelayMs: null,
      claims: fleet.claim ? newClaimObservations(fleet.claim) : null,
    };
    this.assignCohorts();
  }

  /** Seeded, disjoint cohorts; what is left is steady (and the probes' victims). */
  private assignCohorts(): void {
    const { opts } = this;
    const ids = this.ids;
    for (const d of this.fleet.devices) this.creds.set(d.deviceId, d);
    const n = ids.length;
    const size = (f: number, atLeastOne = false) => (f > 0 ? Math.max(atLeastOne ? 1 : 0, Math.round(n * f)) : 0);
    const want: [Cohort, number][] = [
      ['nonRenewing', size(opts.nonRenewingFraction, true)],
      ['revoke', this.fleet.issuer ? size(opts.revokeFraction) : 0],
      ['offline', size(opts.offlineFraction)],
      ['probe', size(opts.probeFraction)],
    ];
    // Keep at least one steady device (the probes need a victim).
    let excess = want.reduce((s, [, k]) => s + k, 0) - (n - 1);
    for (let i = want.length - 1; excess > 0 && i >= 0; i--) {
      const cut = Math.min(excess, want[i]![1]);
      want[i]![1] -= cut;
      excess -= cut;
    }
    const order = this.rng.shuffle(ids);
    let k = 0;
    for (const [cohort, count] of want) this.cohorts[cohort] = order.slice(k, (k += count));
    this.cohorts.steady = order.slice(k);
    for (const cohort of Object.keys(this.cohorts) as Cohort[]) {
      for (const id of this.cohorts[cohort]) this.obs.devices.set(id, newDeviceRecord(id, cohort));
    }
  }

  private rec(id: string): DeviceRecord {
    return this.obs.devices.get(id)!;
  }

  async run(startedAt: number): Promise<SimScenarioReport> {
    const { opts } = this;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const ticker = setInterval(() => this.reportProgress('connect'), 250);
    try {
      if (this.fleet.observer) {
        this.observer = new Observer(this.fleet.observer, this.fleet.observer.brokerUrl, this.obs.observer, new Set(this.ids), (m) => this.obs.errors.push(m));
        await this.observer.start();
      } else {
        this.obs.observer.unavailableReason = 'no registry (--db) to provision an observer in';
      }
      const waveStart = Date.now();
      await this.connectWave();
      this.connectWaveMs = Date.now() - waveStart;
      this.obs.clockStartAt = Date.now();
      // No device got in (a broker on another registry, say): the scenario has nothing to show.
      const anyone = [...this.obs.devices.values()].some((d) => d.connectMs !== null);
      this.endAt = this.obs.clockStartAt + (anyone ? opts.durationMs : 0);
      this.schedule();
      clearInterval(ticker);
      const scenarioTicker = setInterval(() => this.reportProgress('run'), 250);
      await sleepUnless(Math.max(0, this.endAt - Date.now()), this.stop);
      clearInterval(scenarioTicker);
      await this.teardown();
    } finally {
      clearInterval(ticker);
      loop.disable();
    }
    const ms = (ns: number) => Math.round(ns / 1e5) / 10;
    this.obs.eventLoopDelayMs = { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) };
    if (this.obs.claims && this.fleet.issuer) await claimRegistryFacts(this.fleet.issuer, this.obs.claims);
    return this.report(startedAt);
  }

  // ---- connecting ------------------------------------------------------------

  private async connectWave(): Promise<void> {
    // Non-renewing devices first: they connect with the token minted at provisioning, which must still be good.
    const first = (id: string) => (this.rec(id).cohort === 'nonRenewing' ? 0 : 1);
    const queue = [...this.ids].sort((a, b) => first(a) - first(b));
    const worker = async () => {
      for (let id = queue.shift(); id && !this.stop?.aborted; id = queue.shift()) { // Ctrl-C: no more CONNECTs
        if (this.rec(id).cohort !== 'nonRenewing') await this.connectClient(id);
        else {
          const creds = this.creds.get(id) ?? await this.claimFirst(id);
          if (creds) await this.connectRaw(creds);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.connectConcurrency, queue.length) }, worker));
    if (this.fleet.claim && this.obs.claims) {
      const claimed = [...this.obs.devices.values()].filter((d) => d.claimed > 0).length;
      const victim = this.cohorts.steady.find((id) => this.clients.get(id)?.connected);
      const client = victim ? this.clients.get(victim) : undefined;
      await runClaimProbes({
        claim: this.fleet.claim, url: this.urls.get(this.ids[0]!)!, obs: this.obs.claims, budget: this.budget, claimedCount: claimed,
        victim: victim && client ? { id: victim, connected: () => client.connected } : null,
      });
    }
  }

  /** A non-renewing device of a `--claim` run claims its credentials by plain MQTT first. */
  private async claimFirst(id: string): Promise<DeviceCredentials | null> {
    const rec = this.rec(id);
    const r = await claimRaw(this.urls.get(id)!, this.fleet.claim!, id);
    if (r.outcome !== 'claimed') {
      rec.connectError = `claim ${r.outcome}: ${r.code ?? `CONNACK ${r.connack}`} (${r.message})`;
      return null;
    }
    rec.claimed++;
    this.creds.set(id, r.credentials);
    return r.credentials;
  }

  private newClient(creds: DeviceCredentials): DeviceClient {
    return new DeviceClient({ credentials: creds, url: creds.brokerUrl, backoff: { initialMs: 500, maxMs: 5000 } });
  }

  /** A device with credentials, or (a `--claim` run) one that claims them first, through the device library. */
  private async connectClient(id: string): Promise<void> {
    const rec = this.rec(id);
    const creds = this.creds.get(id);
    const claim = this.fleet.claim;
    const client = creds ? this.newClient(creds)
      : new DeviceClient({ claim: claimSourceOf(claim!, id), url: this.urls.get(id)!, backoff: { initialMs: 500, maxMs: 5000 } });
    this.clients.set(rec.id, client);
    this.wire(rec, client);
    this.phase.set(rec.id, 'connecting');
    const t0 = performance.now();
    // Claims queue behind the broker's claim rate limits (per claim and per address): a big claimed fleet takes longer.
    const limitMs = creds ? 30_000 : 30_000 + 100 * this.ids.length;
    try {
      await withTimeout(client.start(), limitMs, `no connect within ${limitMs / 1000} s`);
      if (!creds) this.creds.set(id, client.credentials());
      rec.connectMs = performance.now() - t0;
      this.obs.latency.connect.push(rec.connectMs);
      this.phase.set(rec.id, 'online');
    } catch (err) {
      rec.connectError = (err as Error).message;
      this.phase.set(rec.id, 'away');
      await client.stop().catch(() => {});
    }
  }

  /** A non-renewing device: plain MQTT.js with its token, no renewal, no reconnect. */
  private async connectRaw(creds: DeviceCredentials): Promise<void> {
    const rec = this.rec(creds.deviceId);
    rec.nonRenew = { connectedAt: null, expAt: Date.parse(creds.accessTokenExpiresAt), closedAt: null };
    const res = await connectOnce(creds.brokerUrl, { clientId: rec.id, username: rec.id, password: creds.accessToken, keepalive: 60 });
    if (res.code !== 0 || !res.client) {
      rec.connectError = `CONNACK ${res.code}`;
      return;
    }
    const client = res.client;
    rec.connects++;
    this.obs.counts.connects++;
    rec.connectMs = res.ms;
    this.obs.latency.connect.push(res.ms);
    rec.nonRenew.connectedAt = Date.now();
    this.raw.set(rec.id, client);
    this.phase.set(rec.id, 'online');
    client.on('error', () => {});
    client.once('close', () => {
      if (this.phase.get(rec.id) === 'stopping') return;
      this.phase.set(rec.id, 'away');
      rec.nonRenew!.closedAt = Date.now();
      this.obs.counts.expiryKicks++;
    });
  }

  private wire(rec: DeviceRecord, client: DeviceClient): void {
    const { obs } = this;
    client.on('connected', ({ via }) => {
      rec.connects++;
      obs.counts.connects++;
      if (rec.revoke?.commitAt != null && rec.revoke.reconnectedAt === null) rec.revoke.reconnectedAt = Date.now();
      if (rec.offline?.returnAt != null) rec.offline.via.push(via);
    });
    client.on('disconnected', ({ reason }) => this.onDisconnected(rec, client, reason));
    client.on('claimed', () => { rec.claimed++; });
    client.on('claimRejected', ({ code, connackCode }) => rec.errors.push(`claim refused: ${code ?? `CONNACK ${connackCode}`}`));
    client.on('renewed', (ev) => {
      // The broker moves a session's deadline when it issues the new token, before the
      // answer reaches the device: a renewal sent before exp + leeway explains a session
      // the watchdog saw alive past the old expiry.
      const cand = this.expiryCandidates.get(rec.id);
      if (cand && Date.now() - ev.roundTripMs <= cand.expAt + this.opts.leewayMs) this.expiryCandidates.delete(rec.id);
      rec.renewals++;
      obs.counts.renewals++;
      obs.latency.renewal.push(ev.roundTripMs);
    });
    client.on('renewRejected', ({ code }) => {
      obs.counts.renewRejected++;
      if (rec.revoke?.startedAt != null || this.ending) return; // a revoked device's renewal is meant to be refused
      rec.errors.push(`renewal rejected: ${code}`);
    });
    client.on('refused', ({ connackCode }) => {
      obs.counts.refusals++;
      if (rec.revoke?.startedAt != null) { rec.revoke.refusedAfter++; return; }
      if (this.phase.get(rec.id) === 'stopping') return;
      rec.unexpectedRefusals.push(connackCode);
    });
    client.on('message', (topic) => {
      if (rec.probe && !topic.startsWith(`devices/${rec.id}/`)) rec.probe.foreignMessages++;
    });
    client.on('error', (err) => {
      if (this.ending || this.phase.get(rec.id) === 'stopping' || rec.revoke?.startedAt != null) return;
      rec.errors.push(`client error: ${err.message}`);
    });
  }

  private onDisconnected(rec: DeviceRecord, client: DeviceClient, reason: string): void {
    const now = Date.now();
    const r = rec.revoke;
    if (r && r.startedAt !== null) {
      if (r.kickedAt === null) {
        r.kickedAt = now;
        // Before the commit is known here: measured when it is (revoke).
        if (r.commitAt !== null) this.obs.latency.revokeKick.push(now - r.commitAt);
        this.obs.counts.revocationKicks++;
        void this.afterRevocationKick(rec, client);
      }
      return;
    }
    const phase = this.phase.get(rec.id);
    if (this.ending || phase === 'stopping' || phase === 'away') return;
    const p = rec.probe;
    if (p && p.publishSentAt !== null && p.publishKickedAt === null && this.opts.deniedPublish === 'disconnect') {
      p.publishKickedAt = now;
      this.obs.counts.publishKicks++;
      return;
    }
    rec.unexpectedDisconnects.push({ at: now, reason });
  }

  // ---- the scenario ------------------------------------------------------------

  private at(time: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.ending) return;
      Promise.resolve(fn()).catch((err: unknown) => this.obs.errors.push(`sim: ${(err as Error).message}`));
    }, Math.max(0, time - Date.now()));
    this.timers.add(t);
  }

  private schedule(): void {
    const { opts, rng } = this;
    const t0 = this.obs.clockStartAt;
    const D = opts.durationMs;
    // Telemetry: every device, at a random phase within the interval.
    for (const id of this.ids) {
      this.at(t0 + rng.between(0, opts.publishIntervalMs), () => {
        this.publishOnce(id);
        const iv = setInterval(() => (this.ending ? clearInterval(iv) : this.publishOnce(id)), opts.publishIntervalMs);
        this.timers.add(iv);
      });
    }
    // Offline devices go early enough to stay away past expiry + leeway and still come back.
    const offlineLatest = Math.min(0.5 * D, D - (opts.tokenTtlMs + opts.leewayMs + opts.kickSlackMs + 6000));
    for (const id of this.cohorts.offline) {
      this.rec(id).offline = { wentAt: null, tokenExpAt: null, returnAt: null, cameBackAt: null, via: [], skipped: null, error: null };
      this.at(t0 + rng.between(0.05 * D, Math.max(0.05 * D, offlineLatest)), () => this.goOffline(id));
    }
    for (const id of this.cohorts.revoke) {
      this.rec(id).revoke = { startedAt: null, commitAt: null, wasConnected: false, kickedAt: null, reconnectedAt: null, retries: [], retriesSkipped: 0, refusedAfter: 0 };
      this.at(t0 + rng.between(0.3 * D, 0.6 * D), () => this.revoke(id));
    }
    const victims = this.cohorts.steady;
    for (const id of this.cohorts.probe) {
      const victim = victims[rng.int(victims.length)]!;
      this.rec(id).probe = { victim, ownSubscribe: null, subscribes: [], takeover: null, publishSentAt: null, publishKickedAt: null, foreignMessages: 0, done: false, error: null };
      this.at(t0 + rng.between(0.1 * D, 0.4 * D), () => this.probe(id));
    }
    const wd = setInterval(() => this.watchdog(), WATCHDOG_TICK_MS);
    this.timers.add(wd);
  }

  private publishOnce(id: string): void {
    if (this.phase.get(id) !== 'online') return;
    const rec = this.rec(id);
    const topic = `devices/${id}/telemetry`;
    const payload = JSON.stringify({ from: id, seq: rec.published, t: Date.now() });
    const raw = this.raw.get(id);
    if (raw) {
      if (!raw.connected) return;
      raw.publish(topic, payload, { qos: 0 });
    } else {
      const client = this.clients.get(id);
      if (!client?.connected) return;
      client.publish(topic, payload, { qos: 0 }).catch((err: Error) => {
        if (!this.ending && client.connected && this.phase.get(id) === 'online') rec.errors.push(`publish failed: ${err.message}`);
      });
    }
    rec.published++;
    this.obs.counts.publishes++;
  }

  /** Flags a renewing device whose session outlives its token's exp + leeway (the broker must have closed it). */
  private watchdog(): void {
    const now = Date.now();
    const limit = this.opts.leewayMs + this.opts.kickSlackMs + WATCHDOG_TICK_MS;
    for (const [id, client] of this.clients) {
      if (!client.connected || this.phase.get(id) !== 'online') continue;
      const exp = Date.parse(client.credentials().accessTokenExpiresAt);
      if (now > exp + limit && !this.flaggedExpiry.has(`${id}@${exp}`)) {
        this.flaggedExpiry.add(`${id}@${exp}`);
        this.expiryCandidates.set(id, { id, expAt: exp, seenAt: now });
      }
    }
  }

  private async goOffline(id: string): Promise<void> {
    const rec = this.rec(id);
    const o = rec.offline!;
    const client = this.clients.get(id);
    if (!client || this.phase.get(id) !== 'online') { o.skipped = 'not connected at its offline time'; return; }
    const exp = Date.parse(client.credentials().accessTokenExpiresAt);
    const returnAt = exp + this.opts.leewayMs + this.opts.kickSlackMs + 500;
    if (returnAt + 3000 > this.endAt) { o.skipped = 'its token outlives the run (use a shorter --token-ttl or a longer --duration)'; return; }
    this.phase.set(id, 'away');
    await client.stop();
    o.wentAt = Date.now();
    o.tokenExpAt = exp;
    const creds = client.credentials();
    this.at(returnAt, async () => {
      o.returnAt = Date.now();
      const back = this.newClient(creds);
      this.clients.set(id, back);
      this.wire(rec, back);
      this.phase.set(id, 'connecting');
      try {
        await withTimeout(back.start(), Math.max(1000, this.endAt - Date.now()), 'not back before the run ended');
        o.cameBackAt = Date.now();
        this.phase.set(id, 'online');
      } catch (err) {
        o.error = (err as Error).message;
      }
    });
  }

  /** Revokes through the registry, as `credbroker revoke` in another process would; the clock starts at the commit. */
  private async revoke(id: string): Promise<void> {
    const rec = this.rec(id);
    const r = rec.revoke!;
    const client = this.clients.get(id);
    r.wasConnected = !!client?.connected && this.phase.get(id) === 'online';
    r.startedAt = Date.now();
    await revokeDevices(this.fleet.issuer!.reg, [id as DeviceId], 'device-sim revocation test');
    r.commitAt = Date.now();
    // Kicked while the commit's answer was on its way: no later than the commit, as far as the revoker can tell.
    if (r.kickedAt !== null) this.obs.latency.revokeKick.push(Math.max(0, r.kickedAt - r.commitAt));
    if (!r.wasConnected && client) {
      // Not online at its revocation time: there is nothing to kick; it must still never get back in.
      this.phase.set(id, 'away');
      void client.stop().then(() => this.afterRevocationKick(rec, client));
    }
  }

  /** After the kick: the device keeps trying (token, then refresh credential, ...), each attempt paced by the failed-auth budget. */
  private async afterRevocationKick(rec: DeviceRecord, client: DeviceClient): Promise<void> {
    const r = rec.revoke!;
    this.phase.set(rec.id, 'away');
    await client.stop(); // its own loop would retry on its own schedule: the sim paces the retries instead
    const creds = client.credentials();
    for (let k = 0; k < this.opts.revokedRetries; k++) {
      await sleep(1000);
      if (this.ending) { r.retriesSkipped += this.opts.revokedRetries - k; return; }
      const secret = k % 2 === 0 ? 'token' : 'refresh';
      // Priority: every revoked device's first retry before the probes (1), then the further retries.
      const res = await this.budget.run(k === 0 ? 0 : k + 1, () => connectOnce(this.urls.get(rec.id)!, { clientId: rec.id, username: rec.id, password: secret === 'token' ? creds.accessToken : creds.refreshCredential }, 5000));
      if (res === null) { r.retriesSkipped += this.opts.revokedRetries - k; return; }
      r.retries.push({ secret, code: res.code });
      if (res.code === 0) {
        r.reconnectedAt ??= Date.now();
        res.client?.end(true);
      }
    }
  }

  private async probe(id: string): Promise<void> {
    const rec = this.rec(id);
    const client = this.clients.get(id);
    if (!client || this.phase.get(id) !== 'online' || !client.connected) {
      rec.probe!.error = 'not connected at its probe time';
      rec.probe!.done = true;
      return;
    }
    await runProbe({
      client, record: rec.probe!, url: this.urls.get(id)!, budget: this.budget,
      onSubscribeDenied: () => this.obs.counts.subscribeDenials++,
    });
  }

  // ---- the end -------------------------------------------------------------------

  private async teardown(): Promise<void> {
    this.ending = true;
    this.obs.endAt = Date.now();
    for (const t of this.timers) { clearTimeout(t); clearInterval(t); }
    this.timers.clear();
    this.budget.close();
    this.obs.expiryViolations.push(...this.expiryCandidates.values());
    this.obs.budget = { used: this.budget.used, skipped: this.budget.skipped };
    this.reportProgress('stopping');
    // Let deliveries in flight reach the observer.
    await sleep(500);
    for (const id of this.phase.keys()) this.phase.set(id, 'stopping');
    const stops: Promise<unknown>[] = [];
    for (const c of this.clients.values()) stops.push(withTimeout(c.stop(), 5000, 'stop timed out').catch(() => {}));
    for (const c of this.raw.values()) stops.push(new Promise<void>((r) => c.end(true, {}, () => r())));
    await Promise.all(stops);
    await this.observer?.stop();
    if (this.fleet.files.size > 0) {
      for (const c of this.clients.values()) {
        try {
          saveCredentials(this.fleet, c.credentials());
        } catch (err) {
          this.obs.errors.push(`could not save rotated credentials of ${c.deviceId}: ${(err as Error).message}`);
        }
      }
    }
  }

  private reportProgress(phase: string): void {
    let connected = 0;
    for (const [id, c] of this.clients) if (c.connected && this.phase.get(id) === 'online') connected++;
    for (const c of this.raw.values()) if (c.connected) connected++;
    const c = this.obs.counts;
    let errors = this.obs.errors.length;
    for (const d of this.obs.devices.values()) errors += d.errors.length + d.unexpectedRefusals.length + d.unexpectedDisconnects.length;
    const now = Date.now();
    this.progress.update({
      phase, elapsedMs: this.obs.clockStartAt ? now - this.obs.clockStartAt : 0, totalMs: this.opts.durationMs,
      connected, devices: this.ids.length, renewals: c.renewals, denials: c.subscribeDenials + c.publishKicks,
      kicks: c.revocationKicks + c.expiryKicks + c.publishKicks, errors,
    });
  }

  private report(startedAt: number): SimScenarioReport {
    const { opts, obs } = this;
    const invariants = evaluateInvariants(obs, opts);
    let unexpectedDisconnects = 0;
    let errors = obs.errors.length;
    for (const d of obs.devices.values()) {
      unexpectedDisconnects += d.unexpectedDisconnects.length;
      errors += d.errors.length + d.unexpectedRefusals.length;
    }
    const cohorts = Object.fromEntries(Object.entries(this.cohorts).map(([k, v]) => [k, v.length])) as Record<Cohort, number>;
    const c = obs.counts;
    const end = Date.now();
    return {
      ok: invariants.every((i) => i.verdict !== 'fail'),
      settings: {
        url: opts.url, devices: this.ids.length, durationMs: opts.durationMs, tokenTtlMs: opts.credentialsDir ? null : opts.tokenTtlMs,
        publishIntervalMs: opts.publishIntervalMs, leewayMs: opts.leewayMs, deniedPublish: opts.deniedPublish, seed: opts.seed,
        source: opts.credentialsDir ? 'credentials' : this.fleet.claim ? 'claimed' : 'provisioned',
      },
      cohorts,
      invariants,
      counts: {
        connects: c.connects, publishes: c.publishes, observedMessages: obs.observer.messages, renewals: c.renewals, renewRejected: c.renewRejected,
        refusals: c.refusals, subscribeDenials: c.subscribeDenials, publishKicks: c.publishKicks, revocationKicks: c.revocationKicks,
        expiryKicks: c.expiryKicks, claimed: [...obs.devices.values()].reduce((n, d) => n + d.claimed, 0), unexpectedDisconnects, errors, failedAuthAttempts: obs.budget.used, failedAuthSkipped: obs.budget.skipped,
      },
      latencyMs: { connect: summarize(obs.latency.connect), renewalRoundTrip: summarize(obs.latency.renewal), revocationToKick: summarize(obs.latency.revokeKick) },
      timings: { provisionMs: this.fleet.provisionMs, connectWaveMs: this.connectWaveMs, scenarioMs: obs.endAt - obs.clockStartAt, totalMs: end - startedAt },
      simEventLoopDelayMs: obs.eventLoopDelayMs,
      startedAt: new Date(startedAt).toISOString(),
    };
  }
}



function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sleeps `ms`, or less when `signal` aborts first. */
function sleepUnless(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((r) => {
    const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); r(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(why)), ms); }),
  ]);
}
