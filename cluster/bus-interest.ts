import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { atMostCommandTimeout } from './redis-options.js';

/** The set of broker ids that have an entry, and the prefix of each entry's key (`<prefix><broker id>`: a JSON array of topic roots). */
const INDEX_KEY = 'credbroker:interest';
const ENTRY_PREFIX = 'credbroker:interest:';

/**
 * How long a view of the other brokers' roots is trusted, from the moment its
 * read was sent; and how long a broker waits, after its entry has gained a root,
 * before the subscription that needed it is acknowledged. Every view trusted
 * past that wait was read after the entry changed (see BusInterest). Short,
 * because it is the wait: MQTT clients may give a CONNACK (a persistent session's
 * restored subscriptions) or a SUBACK half a second.
 */
export const LEASE_MS = 100;
/** How often the view is read again: three times per lease, so that a slow reply or two leave it valid. */
const READ_MS = 30;
/**
 * How long a root stays announced after its last subscription here has gone: a
 * device that reconnects, or the next device of its kind, does not wait again.
 */
const LINGER_MS = 60_000;
/** An entry lapses this long after its broker last wrote it (a broker killed with -9 leaves none for longer). */
const ENTRY_TTL_MS = 15_000;
/** How often a broker writes its entry again (its roots may have shrunk; its TTL runs). */
const WRITE_MS = 5_000;
/**
 * Roots per broker entry. A broker past it announces everything (`*`): with one
 * root per device (`<device id>/cmd`), each subscription would otherwise wait a
 * lease and grow an entry that every broker reads several times a second.
 */
const MAX_ROOTS = 256;
/** Entries read per view; past it (a Redis that someone filled), every publish goes to Redis. */
const MAX_ENTRIES = 1024;
/** An entry's bytes; a longer one counts as everything, unparsed. */
const MAX_ENTRY_BYTES = 64 * 1024;
/** The root of wildcard filters (`#`, `+/...`): every topic. */
const EVERY = '*';

// Writes this broker's entry with its TTL, and indexes it.
const WRITE = `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`;
// The live entries, as [id, roots, id, roots, ...]; ids whose entry has lapsed leave the index.
const READ = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then out[#out + 1] = id; out[#out + 1] = v else redis.call('SREM', KEYS[1], id) end
end
return out`;

interface Scripts {
  credbrokerInterestWrite(entry: string, index: string, id: string, roots: string, ttlMs: number): Promise<unknown>;
  credbrokerInterestRead(index: string, prefix: string): Promise<string[]>;
}

/** The first level of a topic or filter: its root, or EVERY for a filter starting with a wildcard. */
export function rootOf(topic: string): string {
  const slash = topic.indexOf('/');
  const root = slash < 0 ? topic : topic.slice(0, slash);
  return root === '+' || root === '#' ? EVERY : root;
}

/**
 * Which topics the other brokers on the bus subscribe to, by root (the first
 * topic level), so that a publish none of them wants stays on this broker:
 * a message between two clients of one worker never crosses Redis.
 *
 * Each broker keeps in Redis an entry naming the roots of its subscriptions
 * (`*` for `#` and `+/...`: everything), and reads the others' entries every
 * READ_MS. A view is trusted for LEASE_MS from the moment its read was sent;
 * with no view trusted (Redis slow or away, the broker just started) every
 * publish goes to Redis, as it would without this.
 *
 * **Why no subscription misses a message.** A subscription with a root this
 * broker's entry lacks is acknowledged only once the entry has it (its write
 * answered, at real time w or later) and LEASE_MS more have passed. Another
 * broker's view that lacks the root was read before w, so it had lapsed
 * by the acknowledgement: any publish that follows the SUBACK, anywhere, goes to
 * Redis, which has had the subscription since before the entry was written. The
 * wait is paid once per root and broker: the first subscription under
 * `devices/` on a worker waits about a tenth of a second, every later one none.
 * Durations are measured on each host's monotonic clock; no clocks need to agree.
 *
 * A root no longer subscribed here leaves the entry LINGER_MS later: until
 * then, publishes under it still go to Redis (a cost, never a loss), and a new
 * subscription under it does not wait.
 */
export class BusInterest {
  /** Local subscriptions per root. */
  private readonly own = new Map<string, number>();
  /** Roots without a local subscription any more, and since when (performance.now()): announced until LINGER_MS after. */
  private readonly idle = new Map<string, number>();
  /** The roots the entry in Redis holds, as last written. */
  private written = new Set<string>();
  /**
   * Per root announced (EVERY: all of them), when its subscriptions may be
   * acknowledged: its write answered and a lease passed. A root leaves it when a
   * write drops it, and all do when a write fails.
   */
  private readonly ready = new Map<string, Promise<void>>();
  /** The other brokers' roots, and until when (performance.now()) they are trusted. */
  private others = new Set<string>();
  private validUntil = 0;
  /** Entries as last parsed, by broker id: an unchanged one is not parsed again. */
  private parsed = new Map<string, { raw: string; roots: readonly string[] }>();
  private reading = false;
  private writing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private writtenAt = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly redis: Redis, private readonly id: string) {
    redis.defineCommand('credbrokerInterestWrite', { numberOfKeys: 2, lua: WRITE });
    redis.defineCommand('credbrokerInterestRead', { numberOfKeys: 1, lua: READ });
    this.timer = setInterval(() => this.tick(), READ_MS).unref();
    this.read();
  }

  /** Whether another broker may subscribe to `topic` (or this one cannot tell): then the publish goes to Redis. */
  wants(topic: string): boolean {
    if (performance.now() >= this.validUntil) return true;
    return this.others.has(EVERY) || this.others.has(rootOf(topic));
  }

  /**
   * A local subscription to `filter`: resolves once every other broker sends what
   * matches it to Redis (at once for a root the entry has; a lease after the
   * entry's write otherwise, or after that write failed: Redis away, where nothing
   * crosses the bus anyway).
   */
  add(filter: string): Promise<void> {
    const root = rootOf(filter);
    this.own.set(root, (this.own.get(root) ?? 0) + 1);
    this.idle.delete(root);
    const known = this.ready.get(root) ?? this.ready.get(EVERY);
    if (known) return known;
    // A Redis that does not answer holds the SUBACK up for COMMAND_TIMEOUT_MS at most, as the subscription's own wait does.
    const ready = atMostCommandTimeout(this.write()).then(() => new Promise<void>((resolve) => setTimeout(resolve, LEASE_MS)));
    this.ready.set(root, ready);
    return ready;
  }

  /** A local subscription gone: its root leaves the entry LINGER_MS after the last one. */
  remove(filter: string): void {
    const root = rootOf(filter);
    const n = (this.own.get(root) ?? 0) - 1;
    if (n > 0) this.own.set(root, n);
    else {
      this.own.delete(root);
      this.idle.set(root, performance.now());
      // Past MAX_ROOTS the entry says everything anyway: the oldest idle root is forgotten.
      if (this.idle.size > MAX_ROOTS + 1) this.idle.delete(this.idle.keys().next().value!);
    }
  }

  /** After an outage (a Redis that restarted empty has lost every entry): the entry is written again at once. */
  reannounce(): void {
    this.written = new Set();
    this.ready.clear();
    void this.write();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** The roots to announce: the subscribed ones, or everything past MAX_ROOTS. */
  private roots(): string[] {
    return this.own.size + this.idle.size > MAX_ROOTS ? [EVERY] : [...this.own.keys(), ...this.idle.keys()];
  }

  /**
   * Writes the entry, after the write in flight if any; a write that has not started
   * yet is shared (it takes the roots as they are when it starts). Never rejects.
   */
  private write(): Promise<void> {
    if (this.queued) return this.queued;
    const after = this.writing ?? Promise.resolve();
    const next = after.then(() => {
      this.queued = null;
      const roots = this.roots();
      const announced = new Set(roots);
      // A root this write drops (or `*` it narrows) is no longer announced: its next subscription announces it again.
      if (!announced.has(EVERY)) for (const r of this.ready.keys()) if (!announced.has(r)) this.ready.delete(r);
      this.writtenAt = performance.now();
      return (this.redis as unknown as Scripts)
        .credbrokerInterestWrite(ENTRY_PREFIX + this.id, INDEX_KEY, this.id, JSON.stringify(roots), ENTRY_TTL_MS)
        .then(() => {
          this.written = announced;
          // Everything announced (past MAX_ROOTS): a lease on, no new root waits any more.
          if (announced.has(EVERY) && !this.ready.has(EVERY)) this.ready.set(EVERY, new Promise<void>((resolve) => setTimeout(resolve, LEASE_MS)));
        }, () => {
          // What Redis holds is unknown: the next tick writes again, and each root's next subscription waits for it.
          this.written = new Set();
          this.ready.clear();
        });
    });
    this.writing = next;
    this.queued = next;
    void next.then(() => { if (this.writing === next) this.writing = null; });
    return next;
  }

  private tick(): void {
    this.read();
    const now = performance.now();
    for (const [root, since] of this.idle) if (now - since >= LINGER_MS) this.idle.delete(root);
    if (this.writing) return;
    const roots = this.roots();
    const changed = roots.length !== this.written.size || roots.some((r) => !this.written.has(r));
    if (changed || performance.now() - this.writtenAt >= WRITE_MS) void this.write();
  }

  private read(): void {
    if (this.reading) return;
    this.reading = true;
    const sent = performance.now();
    (this.redis as unknown as Scripts).credbrokerInterestRead(INDEX_KEY, ENTRY_PREFIX).then((flat) => {
      this.reading = false;
      this.others = this.view(flat);
      this.validUntil = sent + LEASE_MS;
    }, () => { this.reading = false; }); // the view lapses by itself
  }

  /** The other brokers' roots in a READ reply; anything unreadable or too large counts as everything. */
  private view(flat: unknown): Set<string> {
    const roots = new Set<string>();
    if (!Array.isArray(flat) || flat.length > 2 * MAX_ENTRIES) return new Set([EVERY]);
    const parsed = new Map<string, { raw: string; roots: readonly string[] }>();
    for (let k = 0; k + 1 < flat.length; k += 2) {
      const id = String(flat[k]);
      const raw = String(flat[k + 1]);
      if (id === this.id) continue;
      let entry = this.parsed.get(id);
      if (entry?.raw !== raw) entry = { raw, roots: parseRoots(raw) };
      parsed.set(id, entry);
      for (const r of entry.roots) roots.add(r);
    }
    this.parsed = parsed;
    return roots;
  }
}

function parseRoots(raw: string): readonly string[] {
  if (raw.length > MAX_ENTRY_BYTES) return [EVERY];
  try {
    const roots = JSON.parse(raw) as unknown;
    if (Array.isArray(roots) && roots.length <= MAX_ROOTS && roots.every((r) => typeof r === 'string')) return roots as string[];
  } catch {
    // below
  }
  return [EVERY];
}
