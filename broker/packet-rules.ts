import { isValidTopicName } from '../acl/index.js';

/**
 * MQTT 3.1.1 rules on a parsed packet that mqtt-packet's parser does not
 * check; a packet that breaks one closes the connection (the spec's answer to
 * a malformed packet, §4.8). `raw` is the packet's body as received (after the
 * fixed header), `read` how much of it the parser used.
 */
export interface ParsedPacket {
  cmd?: string;
  length: number;
  qos?: number;
  messageId?: number;
  protocolVersion?: number;
  will?: { topic?: string; qos?: number };
  unsubscriptions?: unknown[];
}

const USERNAME_FLAG = 0x80;
const PASSWORD_FLAG = 0x40;

/** Why the packet is malformed (one line), or null when it is not. */
export function breaksRule(packet: ParsedPacket, raw: { byteAt(i: number): number }, read: number, version: number | undefined): string | null {
  switch (packet.cmd) {
    case 'connect': {
      if (version === 5) return null; // MQTT 5 has its own rules; aedes refuses it anyway (CONNACK 1)
      // [MQTT-3.1.2-18/-20/-22]: a field present while its flag is 0 is left over, unread
      if (read !== packet.length) return 'CONNECT holds bytes its flags do not announce [MQTT-3.1.2-18/-20]';
      const flags = raw.byteAt(2 + ((raw.byteAt(0) << 8) | raw.byteAt(1)) + 1);
      if ((flags & PASSWORD_FLAG) && !(flags & USERNAME_FLAG)) return 'CONNECT password flag without user name flag [MQTT-3.1.2-22]';
      if (packet.will) {
        if ((packet.will.qos ?? 0) > 2) return 'CONNECT will QoS 3 [MQTT-3.1.2-14]';
        if (!isValidTopicName(packet.will.topic ?? '')) return 'CONNECT will topic is not a valid topic name [MQTT-3.1.3-10]';
      }
      return null;
    }
    case 'publish':
      return (packet.qos ?? 0) > 0 && packet.messageId === 0 ? 'PUBLISH QoS > 0 with packet id 0 [MQTT-2.3.1-1]' : null;
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp':
      if (version === 5) return null;
      if (packet.length !== 2) return `${packet.cmd.toUpperCase()} of remaining length ${packet.length}, not 2 [MQTT-3.4.2]`;
      return packet.messageId === 0 ? `${packet.cmd.toUpperCase()} with packet id 0 [MQTT-2.3.1-1]` : null;
    case 'subscribe':
      return packet.messageId === 0 ? 'SUBSCRIBE with packet id 0 [MQTT-2.3.1-1]' : null;
    case 'unsubscribe':
      if (packet.messageId === 0) return 'UNSUBSCRIBE with packet id 0 [MQTT-2.3.1-1]';
      return packet.unsubscriptions?.length ? null : 'UNSUBSCRIBE with no topic filter [MQTT-3.10.3-2]';
    default:
      return null;
  }
}

/**
 * A CONNECT the server must answer with a refusal CONNACK before closing, read
 * from its body before the parser (which closes without one) sees it: the
 * CONNACK return code, or null. Protocol level other than 3, 4 (and 5, which
 * aedes answers itself): 1 [MQTT-3.1.2-2].
 */
export function connackBeforeParse(raw: { length: number; byteAt(i: number): number }): number | null {
  if (raw.length < 2) return null;
  const nameLength = (raw.byteAt(0) << 8) | raw.byteAt(1);
  if (nameLength !== 4 && nameLength !== 6) return null;
  if (raw.length < 2 + nameLength + 1) return null;
  if (!holds(raw, nameLength === 4 ? 'MQTT' : 'MQIsdp')) return null;
  const level = raw.byteAt(2 + nameLength) & 0x7f;
  return level === 3 || level === 4 || level === 5 ? null : 1;
}

/** The protocol name in the body is `name` (ASCII), compared byte by byte: this runs on every CONNECT. */
function holds(raw: { byteAt(i: number): number }, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (raw.byteAt(2 + i) !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * A parsed CONNECT the server refuses with a CONNACK of its own: an empty
 * client id gets 2, identifier rejected. [MQTT-3.1.3-8] requires it with
 * clean=0; with clean=1 MQTT lets the server assign an id, but a credbroker
 * client id is bound to the credential's device id (SPEC "Connecting"), so an
 * assigned one could only be refused after it: 2 says why at once [MQTT-3.1.3-9].
 */
export function connackAfterParse(packet: { cmd?: string; clientId?: string; protocolVersion?: number }): number | null {
  return packet.cmd === 'connect' && packet.protocolVersion !== 5 && packet.clientId === '' ? 2 : null;
}
