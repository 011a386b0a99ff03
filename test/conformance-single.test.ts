// MQTT 3.1.1 conformance (test/conformance/) against one broker process.
import t from 'tap';
import { startTestBroker } from './helpers/broker.js';
import { runCases } from './helpers/raw-mqtt.js';
import { CONNECT_CASES } from './conformance/connect.js';
import { DELIVERY_CASES } from './conformance/delivery.js';
import { conformanceTarget } from './conformance/target.js';

// The cases open many connections from one address, some refused on purpose.
const tb = await startTestBroker({ authFailBurst: 10_000, authFailPerSec: 1000, deviceConnectBurst: 10_000 });
t.teardown(() => tb.close());
const target = await conformanceTarget('single', tb.broker.ports.mqtt!, tb.issuer);
await runCases(t, target, [...CONNECT_CASES, ...DELIVERY_CASES]);
