/**
 * A broker under test in a child process of its own, so that the broker's CPU
 * and memory are measured apart from the load generator's. The same file is
 * both sides:
 * - parent: `startBrokerProc('credbroker' | 'aedes', ...)` forks this file and
 *   talks to it over IPC (`stats`, `gc`, `close`);
 * - child (`--broker-child KIND`): starts credbroker (`startBroker`), plain
 *   aedes (`Aedes.createBroker()`, no hooks, the same TCP listener code) or
 *   `verify-floor` (plain aedes whose only hook is one raw node:crypto verify of
 *   the password, see below) on an ephemeral loopback port and answers with its
 *   port, pid, `process.cpuUsage()` and `process.memoryUsage()`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Weakening } from '../../broker/index.js';
import { watchGc, type GcTotals } from './gc-watch.js';

export type BrokerKind = 'credbroker' | 'aedes' | 'mosquitto' | 'verify-floor';
/** `credbroker-bus`: credbroker as one broker of a cluster on a Redis bus (`bus`). */
export type NodeBrokerKind = Exclude<BrokerKind, 'mosquitto'> | 'credbroker-bus';

export interface BrokerStats {
  /** User + system CPU time of the broker process since it started, µs. */
  readonly cpuUs: number;
  readonly rss: number;
  /** V8 heap in use (null for a non-Node broker). */
  readonly heapUsed: number | null;
  /** Connected MQTT clients as the broker counts them (null when unknown). */
  readonly clients: number | null;
  /** CONNECTs answered from credbroker's verified-token cache so far (credbroker only). */
  readonly verifiedTokenHits?: number;
  /** Garbage collection in the broker since it started (Node brokers only): pauses by kind, ms and count. */
  readonly gc?: GcTotals;
}

export interface BrokerHandle {
  readonly kind: BrokerKind;
  readonly port: number;
  readonly pid: number;
  stats(): Promise<BrokerStats>;
  /** Full GC in the broker (no-op for a non-Node broker). */
  gc(): Promise<void>;
  /** Writes a V8 heap snapshot of the broker to `file` (Node brokers only; undefined elsewhere). */
  snapshot?(file: string): Promise<void>;
  close(): Promise<void>;
}

export interface BrokerProcOptions {
  /** Registry file (credbroker only). */
  readonly db?: string;
  /** Extra credbroker config settings. */
  readonly config?: Record<string, unknown>;
  /** Test-only weakening, handed to startBroker in code (credbroker only). */
  readonly weaken?: Weakening;
  /** Write a V8 CPU profile of the broker into this folder (`--cpu-prof`). */
  readonly cpuProfDir?: string;
  /** credbroker-bus: the Redis bus it joins, and whether it skips the cluster key (the unsealed baseline, set in code only). */
  readonly bus?: { readonly url: string; readonly unsealed: boolean };
  /** More V8 flags on the child's command line (heap sizing: `--max-semi-space-size=64`). */
  readonly nodeFlags?: readonly string[];
}

const SELF = fileURLToPath(import.meta.url);

type Reply = { id: number; ok: boolean; result?: unknown; error?: string };

export function startBrokerProc(kind: NodeBrokerKind, opts: BrokerProcOptions = {}): Promise<BrokerHandle> {
  const execArgv = ['--expose-gc', ...(opts.nodeFlags ?? [])];
  if (opts.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  const child: ChildProcess = fork(SELF, ['--broker-child', kind, JSON.stringify({ db: opts.db, config: opts.config ?? {}, weaken: opts.weaken ?? {}, bus: opts.bus })], {
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited = false;
  const exitedP = new Promise<void>((r) => child.once('exit', () => { exited = true; r(); }));
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  });
  exitedP.then(() => { for (const p of pending.values()) p.reject(new Error(`${kind} broker child exited`)); pending.clear(); });
  const call = <T>(cmd: string, arg?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error(`${kind} broker child is gone`));
      const id = ++seq;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, cmd, arg });
    });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${kind} broker child exited early (code ${code})`));
    child.once('exit', onExit);
    child.once('message', (m: { ready?: boolean; port?: number; error?: string }) => {
      child.off('exit', onExit);
      if (!m.ready) { child.kill(); return reject(new Error(`${kind} broker failed to start: ${m.error}`)); }
      resolve({
        kind: kind === 'credbroker-bus' ? 'credbroker' : kind, port: m.port!, pid: child.pid!,
        stats: () => call<BrokerStats>('stats'),
        gc: () => call<void>('gc'),
        snapshot: (file) => call<void>('snapshot', file),
        async close() {
          if (exited) return;
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          try { await call('close'); } catch { /* already gone */ }
          await exitedP;
          clearTimeout(timer);
        },
      });
    });
  });
}

// ---------------------------------------------------------------- child side

async function child(kind: string, args: { db?: string; config: Record<string, unknown>; weaken: Weakening; bus?: BrokerProcOptions['bus'] }): Promise<void> {
  const send = (m: unknown) => process.send!(m);
  const gc = watchGc();
  let close: () => Promise<void>;
  let clients: () => number;
  let cacheHits: () => Promise<number | undefined> = async () => undefined;
  try {
    if (kind === 'credbroker' || kind === 'credbroker-bus') {
      const { startBroker, validateConfig } = await import('../../broker/index.js');
      const config = validateConfig({
        db: args.db, host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: null, backlog: 4096, logLevel: 'info',
        // The bench's whole fleet connects from 127.0.0.1 (5,000 at once in the storm): one address, as a
        // fleet behind one NAT. The caps stay in the path (their cost is measured), set so that they do not bite.
        maxUnauthenticated: 100_000, maxUnauthenticatedPerAddress: 100_000,
        ...args.config,
      });
      // credbroker-bus: one broker of a cluster, as a worker runs it (cluster/worker.ts), sealed or not.
      const bus = kind === 'credbroker-bus' ? await joinBus(args.db!, args.bus!, config.maxQueuedMessages) : null;
      const broker = await startBroker(config, { weaken: args.weaken, ...(bus ? { logger: bus.log, shared: bus.bus.shared } : {}) });
      await bus?.bus.attach(broker);
      close = async () => { await broker.close(); await bus?.bus.close(); };
      clients = () => broker.context.aedes?.connectedClients ?? 0;
      cacheHits = async () => (await broker.context.metrics.verifiedTokenLookups.get()).values.find((v) => v.labels.result === 'hit')?.value ?? 0;
      send({ ready: true, port: broker.ports.mqtt });
    } else {
      // The aedes credbroker runs (patched at run time, broker/aedes-patches/), so that the ratios measure credbroker's own cost.
      const { loadAedes } = await import('../../broker/aedes-patches/load.js');
      const { Aedes } = await loadAedes((line) => process.stderr.write(`${line}\n`));
      const { listen, mqttTcpServer } = await import('../../broker/listeners.js');
      const authenticate = kind === 'verify-floor' ? await bareVerifyHook(args.db!) : undefined;
      const aedes = await Aedes.createBroker({ id: kind, ...(authenticate && { authenticate }) });
      const server = mqttTcpServer(aedes);
      const port = await listen(server, 0, '127.0.0.1', 4096, 'MQTT', '--mqtt-port');
      close = async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()));
        await new Promise<void>((r) => aedes.close(() => r()));
        await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000).unref())]);
      };
      clients = () => aedes.connectedClients;
      send({ ready: true, port });
    }
  } catch (err) {
    send({ ready: false, error: (err as Error).stack ?? String(err) });
    process.exit(1);
  }
  process.on('message', async (m: { id: number; cmd: string; arg?: string }) => {
    try {
      let result: unknown;
      if (m.cmd === 'stats') {
        const cpu = process.cpuUsage();
        const mem = process.memoryUsage();
        result = { cpuUs: cpu.user + cpu.system, rss: mem.rss, heapUsed: mem.heapUsed, clients: clients(), verifiedTokenHits: await cacheHits(), gc: { ...gc } } satisfies BrokerStats;
      } else if (m.cmd === 'gc') {
        const gc = (globalThis as { gc?: () => void }).gc;
        for (let i = 0; i < 3 && gc; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      } else if (m.cmd === 'snapshot') {
        const { writeHeapSnapshot } = await import('node:v8');
        writeHeapSnapshot(m.arg!);
      } else if (m.cmd === 'close') {
        await close();
        send({ id: m.id, ok: true });
        process.disconnect();
        // --cpu-prof writes its profile on a normal exit.
        setTimeout(() => process.exit(0), 50);
        return;
      }
      send({ id: m.id, ok: true, result });
    } catch (err) {
      send({ id: m.id, ok: false, error: (err as Error).message });
    }
  });
  process.on('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
}

async function joinBus(db: string, opts: NonNullable<BrokerProcOptions['bus']>, maxQueuedMessages: number) {
  const { createLogger } = await import('../../broker/index.js');
  const { Bus } = await import('../../cluster/bus.js');
  const { BusKeyring } = await import('../../cluster/bus-keys.js');
  const { openRegistry } = await import('../../registry/index.js');
  const reg = await openRegistry(db);
  const keys = await BusKeyring.load(reg).finally(() => reg.close());
  const log = createLogger('warn');
  const bus = await Bus.connect({ url: opts.url, ca: null }, `bench-${process.pid}`, log, { broadcastTakeover: false, maxQueuedMessages, keys, ...(opts.unsealed && { unsealed: true as const }) });
  return { bus, log };
}

type Authenticate = NonNullable<import('aedes').AedesOptions['authenticate']>;

/**
 * The floor for CONNECT authentication: a hook that does nothing but split and
 * decode the password and make the one raw node:crypto ES256 verify the bench's
 * "raw verify" figure times (no header checks, claims, revocation, ACL, session
 * or metrics). No broker that checks a signature on the main thread can beat it.
 */
async function bareVerifyHook(db: string): Promise<Authenticate> {
  const { rawInput, rawVerify } = await import('./raw-verify.js');
  const { openIssuer } = await import('../../provisioning/index.js');
  const issuer = await openIssuer(db);
  const key = [...issuer.keyring.verifyKeys.values()][0]!.key;
  await issuer.reg.close();
  return (_client, _username, password, done) => {
    const ok = rawVerify(key, rawInput(password?.toString('utf8') ?? ''));
    done(ok ? null : Object.assign(new Error('bad signature'), { returnCode: 4 }), ok);
  };
}

if (process.argv[1] === SELF && process.argv[2] === '--broker-child') {
  void child(process.argv[3]!, JSON.parse(process.argv[4] ?? '{}'));
}
