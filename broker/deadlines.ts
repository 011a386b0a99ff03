/**
 * Session deadlines in 100 ms slots, swept by one interval: no timer object per
 * session (memory and CPU on every CONNECT) and no scan of all sessions — each
 * tick visits only the slots that came due. A deadline fires at most about two
 * slots late.
 *
 * @example
 * const wheel = new DeadlineWheel<Client>((c) => kick(c, 'expired'));
 * wheel.set(client, expiresAtMs + leewayMs);
 */
export class DeadlineWheel<T> {
  private static readonly SLOT_MS = 100;
  private readonly slots = new Map<number, Set<T>>();
  private readonly slotOf = new Map<T, number>();
  private next = DeadlineWheel.slot(Date.now());
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly onDue: (item: T) => void) {
    this.timer = setInterval(() => this.tick(), DeadlineWheel.SLOT_MS);
    this.timer.unref();
  }

  private static slot(ms: number): number {
    return Math.ceil(ms / DeadlineWheel.SLOT_MS);
  }

  /** (Re)schedules `item` to fall due at `atMs`. */
  set(item: T, atMs: number): void {
    this.delete(item);
    const slot = Math.max(DeadlineWheel.slot(atMs), this.next);
    let bucket = this.slots.get(slot);
    if (!bucket) this.slots.set(slot, (bucket = new Set()));
    bucket.add(item);
    this.slotOf.set(item, slot);
  }

  delete(item: T): void {
    const slot = this.slotOf.get(item);
    if (slot === undefined) return;
    this.slotOf.delete(item);
    const bucket = this.slots.get(slot);
    bucket?.delete(item);
    if (bucket?.size === 0) this.slots.delete(slot);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Fires every item whose slot has come (catching up after a stalled event loop). */
  tick(now = Date.now()): void {
    const due = Math.floor(now / DeadlineWheel.SLOT_MS);
    for (; this.next <= due; this.next++) {
      const bucket = this.slots.get(this.next);
      if (!bucket) continue;
      this.slots.delete(this.next);
      for (const item of bucket) {
        this.slotOf.delete(item);
        this.onDue(item);
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
