// One broker's semantics across two nodes (two serve --bus processes) on one registry file, on a real redis-server (issue 13):
// delivery QoS 0/1, takeover (also both at once, 20 times), retained, persistent
// session with queued QoS 1, wills, renewal, refresh-credential replay. The checks
// are in helpers/cluster-semantics.ts, shared with the other topology.
import t from 'tap';
import { clusterSemantics } from './helpers/cluster-semantics.js';

t.setTimeout(600_000); // two brokers, a Redis, 20 takeover rounds: slow on a loaded 2-core box
clusterSemantics(t, 'nodes');
