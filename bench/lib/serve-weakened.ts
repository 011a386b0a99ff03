#!/usr/bin/env node
/**
 * `credbroker serve` whose workers run aedes' broadcast takeover (a test-only
 * weakening), for the cluster bench's before-and-after. The weakening is in this
 * code, not read from anywhere: the shipped CLI has no way to turn it on. The
 * primary is the CLI as it is; node:cluster forks the workers from this same
 * file, which hands them the weakening.
 */
import cluster from 'node:cluster';
import { main } from '../../cli/main.js';
import { serveWorker } from '../../cli/serve-node.js';

if (cluster.isWorker) await serveWorker({ broadcastTakeover: true });
else process.exitCode = await main(process.argv);
