/**
 * Where each idle connection's heap goes, by owner: two V8 heap snapshots of
 * one process (before and after N connections; node ids are stable between
 * them), and every object new in the second is given to the first owner, in
 * OWNERS order, that reaches it without passing through another owner's root.
 * Roots are found by class name (credbroker's per-session structures, aedes'
 * Client and broker) or by the edge that leads to them (a client's parser,
 * socket, session and ACL). Approximate by nature (a shared object goes to the
 * first owner that reaches it), but it names who holds what.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** The node ids of a snapshot (the "before" side). */
export function snapshotIds(file: string): Set<number> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const f = snap.snapshot.meta.node_fields, iId = f.indexOf('id');
  const ids = new Set<number>();
  for (let i = 0; i < snap.nodes.length; i += f.length) ids.add(snap.nodes[i + iId]!);
  return ids;
}

/**
 * Owners in the order they claim objects. `root` picks the root nodes: by the
 * class name of an object, or by the edge name from a Client (`edge:NAME`).
 */
const OWNERS: readonly { readonly owner: string; readonly roots: readonly string[] }[] = [
  { owner: 'credbroker: compiled ACL', roots: ['edge:acl'] },
  { owner: 'credbroker: session object', roots: ['edge:credbroker.session'] },
  { owner: 'credbroker: sessions registry (byDevice, order)', roots: ['Sessions', 'SortedKeys'] },
  { owner: 'credbroker: deadline wheel', roots: ['DeadlineWheel'] },
  { owner: 'credbroker: rate-limit buckets', roots: ['KeyedRateLimiter'] },
  { owner: 'credbroker: verified-token cache', roots: ['VerifiedTokens', 'Lru'] },
  { owner: 'credbroker: audit last-seen', roots: ['AuditBuffer'] },
  { owner: 'credbroker: socket caps, outbound queues', roots: ['UnauthenticatedSockets', 'OutboundQueues'] },
  { owner: 'mqtt-packet parser', roots: ['edge:_parser'] },
  { owner: 'socket / stream buffers', roots: ['edge:conn'] },
  { owner: 'aedes Client (incl. its timers, subscriptions)', roots: ['Client'] },
  { owner: 'aedes broker (clients, subscription trie, persistence)', roots: ['Aedes'] },
];

export interface OwnerRow { readonly owner: string; readonly bytes: number }

/** Bytes per connection by owner: the objects of `after` whose ids are not in `beforeIds`, over `n`. */
export function heapOwners(beforeIds: ReadonlySet<number>, after: string, n: number): OwnerRow[] {
  const snap = JSON.parse(readFileSync(after, 'utf8')) as Snapshot;
  const m = snap.snapshot.meta;
  const nf = m.node_fields.length, ef = m.edge_fields.length;
  const [iType, iName, iId, iSize, iEdges] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((x) => m.node_fields.indexOf(x)) as [number, number, number, number, number];
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((x) => m.edge_fields.indexOf(x)) as [number, number, number];
  const nodeTypes = m.node_types[0], edgeTypes = m.edge_types[0];
  const count = snap.nodes.length / nf;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += snap.nodes[i * nf + iEdges]! * ef; }
  firstEdge[count] = snap.edges.length;
  const isNew = new Uint8Array(count);
  for (let i = 0; i < count; i++) isNew[i] = beforeIds.has(snap.nodes[i * nf + iId]!) ? 0 : 1;
  const weak = new Set(['weak', 'shortcut']);
  const named = (i: number) => (nodeTypes[snap.nodes[i * nf + iType]!] === 'object' ? snap.strings[snap.nodes[i * nf + iName]!]! : '');
  const edgeName = (e: number) => {
    const t = edgeTypes[snap.edges[e + eType]!]!;
    return t === 'element' || t === 'hidden' ? '' : snap.strings[snap.edges[e + eName]!]!;
  };
  // Roots per owner; every root is a barrier for the others.
  const clients: number[] = [];
  for (let i = 0; i < count; i++) if (isNew[i] && named(i) === 'Client') clients.push(i);
  const rootsOf = OWNERS.map(({ roots }) => {
    const out: number[] = [];
    for (const r of roots) {
      if (r.startsWith('edge:')) {
        const want = r.slice(5);
        for (const c of clients) {
          for (let e = firstEdge[c]!; e < firstEdge[c + 1]!; e += ef) {
            const to = snap.edges[e + eTo]! / nf;
            if (want === 'credbroker.session' ? edgeName(e).includes(want) : edgeName(e) === want) out.push(to);
            // The ACL hangs off the session.
            else if (want === 'acl' && edgeName(e).includes('credbroker.session')) {
              for (let e2 = firstEdge[to]!; e2 < firstEdge[to + 1]!; e2 += ef) if (edgeName(e2) === 'acl') out.push(snap.edges[e2 + eTo]! / nf);
            }
          }
        }
      } else for (let i = 0; i < count; i++) if (named(i) === r) out.push(i);
    }
    return out;
  });
  const label = new Int16Array(count).fill(-1);
  rootsOf.forEach((roots, o) => { for (const r of roots) if (label[r] === -1) label[r] = o; });
  const bytes = new Float64Array(OWNERS.length + 1);
  const seen = new Uint8Array(count);
  rootsOf.forEach((roots, o) => {
    const stack = roots.filter((r) => label[r] === o);
    for (const r of stack) seen[r] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      if (isNew[i]) bytes[o]! += snap.nodes[i * nf + iSize]!;
      for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) {
        if (weak.has(edgeTypes[snap.edges[e + eType]!]!)) continue;
        const to = snap.edges[e + eTo]! / nf;
        if (seen[to] || (label[to] !== -1 && label[to] !== o)) continue;
        seen[to] = 1;
        label[to] = o;
        stack.push(to);
      }
    }
  });
  let rest = 0;
  for (let i = 0; i < count; i++) if (isNew[i] && !seen[i]) rest += snap.nodes[i * nf + iSize]!;
  bytes[OWNERS.length] = rest;
  return [...OWNERS.map((o) => o.owner), '(not reached from these owners)'].map((owner, o) => ({ owner, bytes: bytes[o]! / n }));
}
