/**
 * Where a heap's bytes go, by kind of object: a V8 heap snapshot
 * (`v8.writeHeapSnapshot`) summed by self size per constructor name (objects),
 * function name (closures) or node type (strings, arrays, code, ...). Two
 * snapshots taken before and after N idle connections give each kind's bytes
 * per connection.
 */
import { readFileSync } from 'node:fs';

export interface HeapClass { readonly count: number; readonly bytes: number }

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Bytes and object count per kind in one snapshot file. */
export function heapClasses(file: string): Map<string, HeapClass> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType]!]!;
    const name = snap.strings[snap.nodes[i + iName]!]!;
    // Objects and closures by their name; strings, numbers and code only by type (their "names" are their contents).
    const key = type === 'object' ? name : type === 'closure' ? `(closure) ${name || 'anonymous'}` : type === 'array' || type === 'hidden' || type === 'object shape' ? `(${type}) ${name}`.slice(0, 60) : `(${type})`;
    const c = out.get(key) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += snap.nodes[i + iSize]!;
    out.set(key, c);
  }
  return out;
}

/** Per connection: (after − before) / n for each kind, largest first, the `top` largest plus the rest summed. */
export function perConnection(before: Map<string, HeapClass>, after: Map<string, HeapClass>, n: number, top = 15): { name: string; bytes: number; count: number }[] {
  const rows = [...after].map(([name, a]) => {
    const b = before.get(name) ?? { count: 0, bytes: 0 };
    return { name, bytes: (a.bytes - b.bytes) / n, count: (a.count - b.count) / n };
  }).sort((x, y) => y.bytes - x.bytes);
  const rest = rows.slice(top).reduce((s, r) => s + r.bytes, 0);
  return [...rows.slice(0, top), { name: '(everything else)', bytes: rest, count: NaN }];
}
