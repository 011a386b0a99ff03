import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { openIssuer } from '../provisioning/index.js';
import { onRegistryWarning } from '../registry/index.js';
import { peerSocket, remoteAddress } from './address.js';
import { loadAedes } from './aedes-patches/load.js';
import { AuditBuffer } from './audit-buffer.js';
import { AuditTally } from './audit-tally.js';
import { createAuthenticate } from './authenticate.js';
import { ClaimResponder } from './claim.js';
import { LocalClaimLocks, type ClaimLocks } from './claim-locks.js';
import { CONNECT_SLICE_MS, ConnectSlices } from './connect-slices.js';
import { auditGrantKick } from './grant-session.js';
import { createAuthorizeForward } from './authorize-forward.js';
import { createAuthorizePublish } from './authorize-publish.js';
import { createAuthorizeSubscribe } from './authorize-subscribe.js';
import type { BrokerConfig } from './config.js';
import type { BrokerContext } from './context.js';
import { raiseFdLimit } from './fd-limit.js';
import { answerOps, createOpsPort, type OpsAnswer } from './http.js';
import type { OpsMount } from './ops-http-server.js';
import { LimitLog } from './limit-log.js';
import { kernelBacklogCap, listen, portsInUse, PortInUseError, mqttTcpServer, mqttTlsServer, mqttWsServer, type Listener } from './listeners.js';
import { queueLimits, rateLimits, retainedLimits, unauthenticatedLimits, verifiedTokenCacheEntries, wireLimits, wsMaxFrameBytes } from './limits.js';
import { createLogger, type Logger } from './logger.js';
import { rememberEmptySessions } from './empty-sessions.js';
import { retainedWithEmptyLevels } from './retained-wildcards.js';
import { BrokerMetrics } from './metrics.js';
import { KeyringRefresh } from './keyring-refresh.js';
import { OutboundQueues } from './outbound-queue.js';
import { boundedPersistence } from './offline-queue.js';
import { keyedReleases } from './offline-pubrel.js';
import { queueWithEmptyLevels } from './offline-empty-levels.js';
import { guardConnections } from './packet-guard.js';
import { wasLogged } from './logged-error.js';
import { localLimiters, type LimiterFactory, type LimiterName } from './rate-limit.js';
import { RegistryMaintenance } from './registry-maintenance.js';
import { RefusalLog } from './refusal-log.js';
import { RenewalResponder } from './renewal.js';
import { RevocationState } from './revocation-state.js';
import { RevocationWatcher } from './revocation-watcher.js';
import { sessionOf } from './session.js';
import { Sessions } from './sessions.js';
import { UnauthenticatedSockets } from './socket-limits.js';
import { clearRetainedOf, RetainedLedger } from './retained.js';
import { GrantRetainedExpiry } from './grant-retained.js';
import { SubscriptionLimit } from './subscription-limit.js';
import { VerifiedTokens } from './verified-tokens.js';
import { VerifyBudget } from './verify-budget.js';
import type { Weakening } from './weakening.js';

export interface StartOptions {
  readonly logger?: Logger;
  /** How the per-key limits are built: per process by default; a node's workers count them together through their primary (cluster/shared-limits.ts). */
  readonly limiters?: LimiterFactory;
  /** What it shares with the other brokers of a bus (cluster/bus.ts); alone, none. */
  readonly shared?: SharedState;
  /** Test-only weakening (broker/weakening.ts): reachable from code only, never from a config file, flag or environment. */
  readonly weaken?: Weakening;
  /** Who holds each id's claim session: this process alone by default; a worker on a bus asks Redis (cluster/claim-locks.ts). */
  readonly claimLocks?: ClaimLocks;
  /** More handlers on the ops port besides the API (the console under `/console/`). */
  readonly opsMounts?: readonly OpsMount[];
  /**
   * The MQTT listeners bind with SO_REUSEPORT (where `kernelSharesPorts()`), each on
   * this process' own socket: several brokers that bind the same ports each get a
   * share of the connections from the kernel, with no process handing them out.
   */
  readonly reusePort?: boolean;
}

export interface RunningBroker {
  /** Bound ports (null for a disabled listener). */
  readonly ports: { mqtt: number | null; tls: number | null; ws: number | null; http: number | null };
  readonly context: BrokerContext;
  /** The registry's pruning and space reclaim (runs on its own timer; `run()` forces a pass). */
  readonly maintenance: RegistryMaintenance;
  /** Answers a request of the operations port (`/readyz`, `/sessions?…`) without HTTP: a cluster's primary asks its workers. */
  ops(method: string, target: string): Promise<OpsAnswer>;
  /** Stops accepting, closes every session, flushes the audit and closes the registry. */
  close(): Promise<void>;
}

/**
 * What a broker shares with others when it is one of several (cluster/): as
 * aedes takes them, an emitter that carries publishes between brokers and a
 * persistence that holds sessions and retained messages. Alone, the broker
 * makes its own in memory.
 */
export interface SharedState {
  /** aedes' `id`: unique per broker (a moved device's old session is closed by it). */
  readonly id: string;
  readonly mq: unknown;
  readonly persistence: unknown;
  /** False while what is shared is unreachable: `/readyz` says not ready. */
  ready(): boolean;
}

/**
 * Starts the broker: aedes with credbroker's hooks, the listeners, the ops HTTP
 * server and the revocation watcher.
 *
 * @example
 * const broker = await startBroker(loadConfig({ mqttPort: 0, httpPort: 0, wsPort: null }));
 * // ... mqtt.connect(`mqtt://127.0.0.1:${broker.ports.mqtt}`, { username, password, clientId })
 * await broker.close();
 */
export async function startBroker(config: BrokerConfig, opts: StartOptions = {}): Promise<RunningBroker> {
  const log = opts.logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  const rates = rateLimits(config);
  const limiter = (name: LimiterName) => (opts.limiters ?? localLimiters)(name, rates[name].burst, rates[name].perSecond, metrics);
  onRegistryWarning((message) => log.warn({ event: 'registry.insecure_transport' }, message));
  const weaken = opts.weaken ?? {};
  const issuer = await openIssuer(config.db);
  const metrics = new BrokerMetrics();
  const revocation = new RevocationState();
  let fromSeq: number;
  try {
    // The feed's position first: a change committed while the state loads is applied again (harmless), never missed.
    fromSeq = await issuer.reg.changes.latest();
    await revocation.load(issuer.reg);
  } catch (err) {
    await issuer.reg.close();
    throw err;
  }
  const audit = new AuditBuffer(issuer.reg, log);
  const limitLog = new LimitLog(log);
  const sessions = new Sessions({
    leewaySec: config.leewaySec, neverExpire: !!weaken.neverExpireSessions, metrics, log,
    onKick: (s, reason) => { if (s.grant) auditGrantKick(ctx, s, reason); },
  });
  const ctx: BrokerContext = {
    config, weaken, issuer, revocation, metrics, log, aedes: null,
    sessions,
    kicks: sessions,
    audit,
    tally: new AuditTally(audit, metrics, { rowsPerKey: config.auditRowsPerKey, rowsPerWindow: config.auditRowsPerWindow, windowMs: config.auditSummaryMs }),
    authFailures: limiter('authFailures'),
    deviceConnects: limiter('deviceConnects'),
    renewals: limiter('renewals'),
    claimRequests: limiter('claimRequests'),
    claimAddresses: limiter('claimAddresses'),
    claimConnects: limiter('claimConnects'),
    claimConnectAddresses: limiter('claimConnectAddresses'),
    claimLocks: opts.claimLocks ?? new LocalClaimLocks(),
    sessionStoreUp: () => shared?.ready() ?? true,
    subscriptions: new SubscriptionLimit(config.maxSubscriptionsPerConnection),
    retained: new RetainedLedger(retainedLimits(config)),
    grantRetained: new GrantRetainedExpiry((owner) => clearRetainedOf(ctx, owner, 'grant_expired')),
    verifyBudget: new VerifyBudget(config.verifyBudgetPerSec, config.verifyBudgetBurst, (address) => {
      metrics.limitRefusals.inc({ limit: 'verify_budget' });
      limitLog.hit('verify_budget', address);
    }),
    refusals: new RefusalLog(log, metrics, { burst: config.refusalLogBurst, perSec: config.refusalLogPerSec, maxPerSec: config.refusalLogMaxPerSec }),
    verifiedTokens: verifiedTokens(config, metrics),
  };
  metrics.countSuspectsWith(() => ctx.verifyBudget.suspectCount);
  metrics.countRetainedWith(() => ctx.retained.size);
  const weakened = Object.entries(weaken).filter(([, on]) => on).map(([k]) => k);
  if (weakened.length) log.warn({ event: 'broker.weakened', weakened }, 'TEST-ONLY WEAKENING ENABLED: this broker is deliberately insecure');

  const unauth = unauthenticatedSockets(config, log, metrics, limitLog);
  // `weaken.noLimits` (bench only: what the limits cost) leaves the listeners ungated.
  const gate = <T extends Parameters<typeof unauth.guard>[0]>(server: T): T => (weaken.noLimits ? server : unauth.guard(server));
  const renewal = new RenewalResponder(ctx);
  const shared = opts.shared;
  const claims = new ClaimResponder(ctx);
  const { Aedes } = await loadAedes((line) => log.warn({ event: 'aedes.unpatched' }, line), { patched: !weaken.unpatchedAedes });
  const aedes = await Aedes.createBroker({
    id: shared?.id ?? `credbroker-${randomBytes(4).toString('hex')}`,
    // Persistent sessions' stored queues bounded too (aedes' default store has no limit), and queued where `+` matches an empty level (the Redis store does that itself).
    ...(shared ? { mq: shared.mq, persistence: conformPersistence(shared.persistence) }
      : weaken.noLimits ? {} : { persistence: conformPersistence(keyedReleases(queueWithEmptyLevels(boundedPersistence(queueLimits(config), (reason) => metrics.outboundDropped.inc({ reason }))))) }),
    connectTimeout: config.connectTimeoutMs,
    drainTimeout: config.drainTimeoutMs,
    maxInflightInbound: config.maxInflightInbound,
    maxClientsIdLength: 128,
    // No mqemitter queue: with a concurrency cap, a burst (5,000 clients leaving at
    // once) queues messages whose release recurses until the stack overflows
    // (seen here; moscajs/aedes#193). Per-client queues and drainTimeout bound memory.
    concurrency: 0,
    // In slices of an event-loop turn, so that a storm of CONNECTs cannot keep the listeners from accepting.
    authenticate: new ConnectSlices(CONNECT_SLICE_MS, () => metrics.connectsDeferred.inc()).wrap(createAuthenticate(ctx)),
    authorizePublish: createAuthorizePublish(ctx, renewal, claims),
    authorizeSubscribe: createAuthorizeSubscribe(ctx),
    authorizeForward: createAuthorizeForward(ctx, weaken.noLimits ? null : new OutboundQueues(queueLimits(config))),
  });
  ctx.aedes = aedes;
  const wire = wireLimits(config);
  if (!weaken.noLimits) {
    guardConnections(aedes, wire, {
      authenticated: (client) => sessionOf(client) !== undefined,
      onViolation: (client, v) => {
        ctx.metrics.packetsRefused.inc({ reason: v.reason });
        // debug: under a flood the metric is the signal, not one line per socket.
        ctx.log.debug({ event: 'wire.refused', reason: v.reason, device: sessionOf(client)?.deviceId, address: remoteAddress(client), err: v.message }, 'connection closed: packet refused');
      },
      onBroken: (err) => ctx.log.error({ event: 'wire.guard_broken', err: err.message }, 'connection refused: packet guard cannot be installed'),
    });
  }
  aedes.on('clientReady', (c) => {
    unauth.authenticated(peerSocket(c));
    ctx.sessions.ready(c);
  });
  aedes.on('clientDisconnect', (c) => ctx.sessions.gone(c));
  aedes.on('unsubscribe', (filters, c) => ctx.subscriptions.release(c, filters));
  // A refusal or kick has its own line already; aedes re-emits its error here.
  // A TypeError or the like is a bug, not a client's doing: its stack says where.
  aedes.on('clientError', (_c, err) => {
    if (!wasLogged(err)) log.debug({ event: 'client.error', err: err.message, ...(isBug(err) ? { stack: err.stack } : {}) }, 'client error');
  });
  aedes.on('connectionError', (_c, err) => { if (!wasLogged(err)) log.debug({ event: 'connection.error', err: err.message }, 'connection error'); });
  // A shared persistence can fail (its store unreachable); aedes reports it here, and an 'error' with no listener would end the process.
  (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ event: 'broker.error', err: err.message }, 'broker error (its shared store?)'));
  const keys = new KeyringRefresh(ctx);
  const watcher = new RevocationWatcher(ctx, keys, fromSeq);
  const maintenance = new RegistryMaintenance(ctx);

  const servers: Listener[] = [];
  const conflicts: PortInUseError[] = [];
  const bind = async (server: Listener, port: number | null, what: string, flag: string, host = config.host, reusePort = !!opts.reusePort) => {
    if (port === null) return null;
    servers.push(server);
    let bound: number;
    try {
      bound = await listen(server, port, host, config.backlog, what, flag, reusePort);
    } catch (err) {
      // Every port in use is reported at once: a second broker would otherwise be fixed one flag per try.
      if (!(err instanceof PortInUseError)) throw err;
      conflicts.push(err);
      return null;
    }
    // After binding, an accept error (e.g. out of file descriptors) is logged, never fatal.
    server.on('error', (err) => log.error({ event: 'listener.error', listener: what, err: err.message }, 'listener error'));
    return bound;
  };
  let ready = false;
  const isReady = () => ready && (shared?.ready() ?? true);
  let opsPort: ReturnType<typeof createOpsPort> | null = null;
  let ports: RunningBroker['ports'];
  try {
    opsPort = config.httpPort === null ? null : createOpsPort(ctx, isReady, opts.opsMounts ?? []);
    ports = {
      mqtt: await bind(gate(mqttTcpServer(aedes)), config.mqttPort, 'MQTT', '--mqtt-port'),
      tls: config.tlsPort === null ? null : await bind(gate(mqttTlsServer(aedes, config)), config.tlsPort, 'MQTT/TLS', '--tls-port'),
      ws: await bind(gate(mqttWsServer(aedes, {
        maxPayload: wsMaxFrameBytes(wire), origins: config.wsOrigins, connectTimeoutMs: config.connectTimeoutMs,
        onRefused: (why) => metrics.wsRefusals.inc({ reason: why }),
      })), config.wsPort, 'WebSocket', '--ws-port'),
      http: opsPort && await bind(opsPort.server, config.httpPort, 'HTTP', '--http-port', config.httpHost, false),
    };
    if (conflicts.length) throw portsInUse(conflicts);
  } catch (err) {
    await shutdown();
    throw err;
  }
  ready = true;
  const cap = kernelBacklogCap();
  if (cap !== null && cap < config.backlog) {
    log.warn({ event: 'listener.backlog_capped', backlog: config.backlog, somaxconn: cap },
      'the kernel caps the listen backlog below the configured one: a reconnect storm may overflow it (raise net.core.somaxconn)');
  }
  log.info({
    event: 'broker.started', ports, host: config.host, httpHost: config.httpHost, db: issuer.reg.location, devices: await issuer.reg.devices.countByStatus(),
    activeKid: issuer.keyring.signer?.kid ?? null, issuer: issuer.settings.issuer,
  }, 'credbroker listening');

  let closing: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    ready = false;
    await watcher.close();
    ctx.grantRetained.close();
    opsPort?.close();
    keys.close();
    await maintenance.close();
    // Stop accepting first; `close` resolves once the remaining connections are gone.
    const stopped = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    log.info({ event: 'broker.stopping', sessions: ctx.sessions.size }, 'closing listeners and sessions');
    for (const c of [...ctx.sessions.all()]) ctx.sessions.kick(c, 'shutdown');
    await new Promise<void>((r) => aedes.close(() => r()));
    for (const s of servers) (s as HttpServer).closeAllConnections?.();
    await Promise.race([Promise.all(stopped), new Promise((r) => setTimeout(r, 2000).unref())]);
    ctx.sessions.close();
    ctx.tally.close();
    await ctx.audit.close();
    ctx.refusals.close();
    for (const l of [ctx.authFailures, ctx.deviceConnects, ctx.renewals, ctx.claimRequests, ctx.claimAddresses, ctx.claimConnects, ctx.claimConnectAddresses, ctx.verifyBudget, ctx.verifiedTokens]) l.close();
    await issuer.reg.close();
  }
  return {
    ports: ports!,
    context: ctx,
    maintenance,
    ops: (method, target) => answerOps(ctx, isReady, method, target),
    close: () => {
      closing ??= shutdown().then(() => log.info({ event: 'broker.stopped' }, 'credbroker stopped'));
      return closing;
    },
  };
}

function isBug(err: Error): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError;
}

/** MQTT 3.1.1 where aedes' persistences fall short: empty persistent sessions, `+` over an empty level in retained replay. */
function conformPersistence<P>(persistence: P): P {
  return retainedWithEmptyLevels(rememberEmptySessions(persistence));
}

/** The verified-token cache, counted in its metrics (label children bound once: a lookup is on every CONNECT). */
function verifiedTokens(config: BrokerConfig, metrics: BrokerMetrics): VerifiedTokens {
  const hit = metrics.verifiedTokenLookups.labels('hit');
  const miss = metrics.verifiedTokenLookups.labels('miss');
  const cache = new VerifiedTokens(verifiedTokenCacheEntries(config), {
    hit: () => hit.inc(),
    miss: () => miss.inc(),
    evicted: (reason, n) => metrics.verifiedTokenEvictions.inc({ reason }, n),
  });
  metrics.countVerifiedTokensWith(() => cache.size);
  return cache;
}

/**
 * The cap on sockets that have not authenticated (socket-limits.ts), sized from
 * the open-files limit, which is raised to its hard limit first.
 */
function unauthenticatedSockets(config: BrokerConfig, log: Logger, metrics: BrokerMetrics, limitLog: LimitLog): UnauthenticatedSockets {
  const fd = raiseFdLimit(log);
  const { max, perAddress } = unauthenticatedLimits(config, fd);
  if (fd && config.maxConnections + max > fd.soft) {
    log.warn({ event: 'broker.fd_limit_low', soft: fd.soft, maxConnections: config.maxConnections, maxUnauthenticated: max },
      'the open-files limit is below maxConnections + maxUnauthenticated: descriptors run out first (raise LimitNOFILE / ulimit -n, or lower maxConnections)');
  }
  const gate = new UnauthenticatedSockets(max, perAddress, (limit, address) => {
    metrics.limitRefusals.inc({ limit: `unauthenticated_${limit}` });
    limitLog.hit(`unauthenticated_${limit}`, address);
  });
  metrics.countUnauthenticatedWith(() => gate.size);
  log.info({ event: 'broker.unauthenticated_limits', max, perAddress }, 'caps on sockets that have not authenticated');
  return gate;
}
