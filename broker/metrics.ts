import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The broker's Prometheus metrics, on their own registry (one per broker instance). */
export class BrokerMetrics {
  readonly registry = new Registry();
  private connectedCount: () => number = () => 0;
  private registrySizes: () => Promise<{ fileBytes: number; walBytes: number }> = async () => ({ fileBytes: 0, walBytes: 0 });
  private unauthenticatedCount: () => number = () => 0;
  private suspectCount: () => number = () => 0;
  // Read at scrape time: a gauge set on every CONNECT and disconnect is hot-path work nobody reads.
  readonly connected: Gauge = new Gauge({
    name: 'credbroker_connected_clients', help: 'Authenticated MQTT sessions', registers: [this.registry],
    collect: () => { this.connected.set(this.connectedCount()); },
  });
  readonly authResults = new Counter({ name: 'credbroker_auth_results_total', help: 'CONNECT authentication results by reason', labelNames: ['result', 'reason'] as const, registers: [this.registry] });
  readonly aclDenials = new Counter({ name: 'credbroker_acl_denials_total', help: 'Refused publishes, subscribes and deliveries (deliver: a topic outside the session ACL)', labelNames: ['action'] as const, registers: [this.registry] });
  readonly renewals = new Counter({ name: 'credbroker_renewals_total', help: 'In-band token renewals by result', labelNames: ['result', 'reason'] as const, registers: [this.registry] });
  readonly claims = new Counter({ name: 'credbroker_claims_total', help: 'Provisioning requests by claim: accepted, or rejected with the wire code (rate_limited: a claim rate limit bit)', labelNames: ['result', 'reason'] as const, registers: [this.registry] });
  readonly kicks = new Counter({ name: 'credbroker_session_kicks_total', help: 'Sessions closed by the broker', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly unauthenticated: Gauge = new Gauge({
    name: 'credbroker_unauthenticated_sockets', help: 'Accepted MQTT sockets (TCP, TLS, WebSocket) that have not authenticated yet', registers: [this.registry],
    collect: () => { this.unauthenticated.set(this.unauthenticatedCount()); },
  });
  readonly suspects: Gauge = new Gauge({
    name: 'credbroker_suspect_addresses', help: 'Addresses with a failed credential check in the last minute: their checks share the verification budget', registers: [this.registry],
    collect: () => { this.suspects.set(this.suspectCount()); },
  });
  readonly retainedCleared = new Counter({ name: 'credbroker_retained_cleared_total', help: 'Retained messages deleted because the device that owned them was revoked', registers: [this.registry] });
  private retainedCount: () => number = () => 0;
  readonly retained: Gauge = new Gauge({
    name: 'credbroker_retained_messages', help: 'Retained messages held (published by devices)', registers: [this.registry],
    collect: () => { this.retained.set(this.retainedCount()); },
  });
  readonly limitRefusals = new Counter({ name: 'credbroker_limit_refusals_total', help: 'Requests refused because a resource limit was reached, by limit', labelNames: ['limit'] as const, registers: [this.registry] });
  readonly wsRefusals = new Counter({ name: 'credbroker_ws_handshake_refusals_total', help: 'WebSocket upgrades refused (no mqtt subprotocol, origin not allowed)', labelNames: ['reason'] as const, registers: [this.registry] });
  // File sizes are read at scrape time (a stat call); row counts at each maintenance pass (they read the tables).
  readonly registryBytes: Gauge<'file'> = new Gauge({
    name: 'credbroker_registry_bytes', help: 'Size of the registry file and of its write-ahead log', labelNames: ['file'] as const, registers: [this.registry],
    collect: async () => {
      const s = await this.registrySizes();
      this.registryBytes.set({ file: 'db' }, s.fileBytes);
      this.registryBytes.set({ file: 'wal' }, s.walBytes);
    },
  });
  readonly registryRows = new Gauge({ name: 'credbroker_registry_rows', help: 'Rows per registry table, as of the last maintenance pass', labelNames: ['table'] as const, registers: [this.registry] });
  readonly auditSummarized = new Counter({ name: 'credbroker_audit_events_summarized_total', help: 'Audit events counted into a summary row instead of written one by one (refused logins, refused renewals)', labelNames: ['action'] as const, registers: [this.registry] });
  readonly registryPruned = new Counter({ name: 'credbroker_registry_pruned_rows_total', help: 'Registry rows deleted by retention and expiry', labelNames: ['table'] as const, registers: [this.registry] });
  readonly packetsRefused = new Counter({ name: 'credbroker_packets_refused_total', help: 'Connections closed for a packet over its size bound, with ill-formed UTF-8, or malformed (MQTT 3.1.1), by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly outboundDropped = new Counter({ name: 'credbroker_outbound_dropped_total', help: 'Deliveries dropped because the client was over its queue bound: QoS 0 to a connected client (messages, bytes), or any message stored for an offline persistent session (offline_messages, offline_bytes)', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly sharedLimitFallbacks = new Counter({ name: 'credbroker_shared_limit_fallbacks_total', help: 'Rate-limit counts a worker could not send to its node\'s primary (the primary gone, or too many keys waiting): for those, the worker limited on its own', labelNames: ['limit'] as const, registers: [this.registry] });
  readonly connectsDeferred = new Counter({ name: 'credbroker_connects_deferred_total', help: 'CONNECTs that waited for a later event-loop turn so that the listeners could accept meanwhile (a storm of CONNECTs)', registers: [this.registry] });
  readonly logSuppressed = new Counter({ name: 'credbroker_log_lines_suppressed_total', help: 'Log lines held back by a rate limit (counted in a summary line instead)', labelNames: ['event'] as const, registers: [this.registry] });
  private verifiedTokenCount: () => number = () => 0;
  readonly verifiedTokens: Gauge = new Gauge({
    name: 'credbroker_verified_token_cache_entries', help: 'Accepted access tokens whose verification is remembered for reconnects', registers: [this.registry],
    collect: () => { this.verifiedTokens.set(this.verifiedTokenCount()); },
  });
  readonly verifiedTokenLookups = new Counter({ name: 'credbroker_verified_token_cache_lookups_total', help: 'Access-token CONNECTs answered from the verified-token cache (hit) or verified (miss)', labelNames: ['result'] as const, registers: [this.registry] });
  readonly verifiedTokenEvictions = new Counter({ name: 'credbroker_verified_token_cache_evictions_total', help: 'Entries dropped from the verified-token cache: capacity (the bound), expired, key (its key retired, killed or changed), settings, clock (stepped back)', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly verifySeconds = new Histogram({
    name: 'credbroker_token_verify_seconds', help: 'Access token verification time', registers: [this.registry],
    buckets: [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.02],
  });

  /** Where `credbroker_suspect_addresses` reads its value from. */
  countSuspectsWith(count: () => number): void {
    this.suspectCount = count;
  }

  /** Where `credbroker_unauthenticated_sockets` reads its value from. */
  countUnauthenticatedWith(count: () => number): void {
    this.unauthenticatedCount = count;
  }

  /** Where `credbroker_retained_messages` reads its value from. */
  countRetainedWith(count: () => number): void {
    this.retainedCount = count;
  }

  /** Where `credbroker_verified_token_cache_entries` reads its value from. */
  countVerifiedTokensWith(count: () => number): void {
    this.verifiedTokenCount = count;
  }

  /** Where `credbroker_connected_clients` reads its value from. */
  countConnectedWith(count: () => number): void {
    this.connectedCount = count;
  }

  /** Where `credbroker_registry_bytes` reads the file sizes from. */
  sizeRegistryWith(sizes: () => Promise<{ fileBytes: number; walBytes: number }>): void {
    this.registrySizes = sizes;
  }
}
