/** Keys per chunk before it splits: inserts move at most this many, and lookups halve the chunk list first. */
const CHUNK = 512;

/**
 * A set of strings kept in order (`<`, as `Array.prototype.sort`), as a list of
 * sorted chunks: add and delete cost O(log n + CHUNK + n / CHUNK), reading N keys
 * after a cursor O(log n + N). What `GET /sessions` pages through, so that a page
 * costs the page and not a sort of every session (issue 19 #10).
 */
export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** False when it was already there. */
  add(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.count++;
      return true;
    }
    // The first chunk whose last key is ≥ key; past them all, the last chunk takes it.
    const ci = Math.min(bound(this.chunks, key, false, lastOf), this.chunks.length - 1);
    const chunk = this.chunks[ci]!;
    const at = bound(chunk, key, false, ownKey);
    if (chunk[at] === key) return false;
    chunk.splice(at, 0, key);
    this.count++;
    if (chunk.length > CHUNK) this.chunks.splice(ci, 1, chunk.slice(0, chunk.length >> 1), chunk.slice(chunk.length >> 1));
    return true;
  }

  /** False when it was not there. */
  delete(key: string): boolean {
    const ci = bound(this.chunks, key, false, lastOf);
    const chunk = this.chunks[ci];
    if (!chunk) return false;
    const at = bound(chunk, key, false, ownKey);
    if (chunk[at] !== key) return false;
    chunk.splice(at, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  /** The keys greater than `after`, in order (`after` itself need not be here). Do not add or delete while iterating. */
  *after(after: string): Generator<string, void, undefined> {
    let ci = bound(this.chunks, after, true, lastOf);
    for (let at = ci < this.chunks.length ? bound(this.chunks[ci]!, after, true, ownKey) : 0; ci < this.chunks.length; ci++, at = 0) {
      const chunk = this.chunks[ci]!;
      for (; at < chunk.length; at++) yield chunk[at]!;
    }
  }
}

/**
 * The first index in `items` (sorted by `keyOf`) whose key is ≥ `key` (`strict`: > `key`);
 * `items.length` when none is. Over chunks, `keyOf` is a chunk's last key.
 */
function bound<T>(items: readonly T[], key: string, strict: boolean, keyOf: (item: T) => string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keyOf(items[mid]!);
    if (k < key || (strict && k === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const ownKey = (k: string) => k;
const lastOf = (chunk: readonly string[]) => chunk[chunk.length - 1]!;
