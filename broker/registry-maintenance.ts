import { pruneRegistry, type Pruned } from '../operations/retention.js';
import type { BrokerContext } from './context.js';

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Keeps the registry's size level under a steady fleet: every
 * `maintenanceIntervalMs` it prunes expired token records (past the leeway),
 * audit events past retention and old change-feed rows, gives the space back,
 * and refreshes the `credbroker_registry_rows` gauge. Off the CONNECT path: a
 * timer, yielding the event loop between batches.
 */
export class RegistryMaintenance {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<Pruned | null> | null = null;
  private closed = false;

  constructor(private readonly ctx: BrokerContext) {
    ctx.metrics.sizeRegistryWith(() => ctx.issuer.reg.space.fileSizes());
    this.timer = setInterval(() => void this.run(), ctx.config.maintenanceIntervalMs).unref();
  }

  /** One pass now (or the one under way); null when it failed (logged). */
  run(): Promise<Pruned | null> {
    this.running ??= this.pass().finally(() => { this.running = null; });
    return this.running;
  }

  private async pass(): Promise<Pruned | null> {
    const { ctx } = this;
    const { config, metrics, log } = ctx;
    const reg = ctx.issuer.reg;
    const started = performance.now();
    try {
      const pruned = await pruneRegistry(reg, {
        tokenGraceMs: config.leewaySec * 1000,
        auditMs: config.auditRetentionMs || null,
        renewalAuditMs: config.renewalAuditRetentionMs || null,
      }, { pause: async () => { await yieldToEventLoop(); if (this.closed) throw new Error('broker closing'); } });
      metrics.registryPruned.inc({ table: 'tokens' }, pruned.tokens);
      metrics.registryPruned.inc({ table: 'grants' }, pruned.grants);
      metrics.registryPruned.inc({ table: 'audit' }, pruned.audit);
      metrics.registryPruned.inc({ table: 'changes' }, pruned.changes);
      const stats = await reg.space.stats();
      for (const [table, n] of Object.entries(stats.rows)) metrics.registryRows.set({ table }, n);
      log.debug({ event: 'registry.maintenance', ...pruned, fileBytes: stats.fileBytes, walBytes: stats.walBytes, ms: Math.round(performance.now() - started) }, 'registry maintenance pass');
      return pruned;
    } catch (err) {
      if (!this.closed) log.error({ event: 'registry.maintenance_failed', err: (err as Error).message }, 'registry maintenance failed; will retry');
      return null;
    }
  }

  /** Stops the timer and waits for a pass under way, which stops at its next batch. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
