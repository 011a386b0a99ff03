// MQTT 3.1.1 conformance (test/conformance/) against `serve --workers 2` on a
// Redis bus: connections land on either worker, sessions and retained messages
// live in Redis.
import t from 'tap';
import { startCluster } from './helpers/cluster.js';
import { runCases } from './helpers/raw-mqtt.js';
import { CONNECT_CASES } from './conformance/connect.js';
import { DELIVERY_CASES } from './conformance/delivery.js';
import { conformanceTarget } from './conformance/target.js';

const cluster = await startCluster(t, 'workers', { env: { CREDBROKER_AUTH_FAIL_BURST: '10000', CREDBROKER_DEVICE_CONNECT_BURST: '10000' } });
const node = cluster.nodes[0]!;
const target = await conformanceTarget('workers', node.mqttPort, node.issuer);
await runCases(t, target, [...CONNECT_CASES, ...DELIVERY_CASES]);
