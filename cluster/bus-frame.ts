import { deserialize, serialize } from 'node:v8';

/** A message as aedes hands it to its `mq` (aedes-packet): what crosses the bus. */
export type BusPacket = { topic: string; payload: Buffer | string } & Record<string, unknown>;

/** This release's frame (a number apart from the seal's versions, bus-auth.ts, so that a bare frame never passes for a sealed message). */
const VERSION = 4;
/** The previous release's frame: no client id field (it travelled as an extra). Read, never written. */
const VERSION_NO_CLIENT_ID = 1;
/** A run of frames for one channel, sent as one bus message: BATCH, then each frame as length(4) frame. */
const BATCH = 2;
const QOS = 0b11;
const RETAIN = 1 << 2;
const DUP = 1 << 3;
const STRING_PAYLOAD = 1 << 4;
const EXTRA = 1 << 5;
const CLIENT_ID = 1 << 6;
/**
 * The fields in the frame's fixed part: every aedes packet's, and the publisher's
 * client id (aedes sets it on every publish from a client, for MQTT 5's no-local).
 * Any other field travels in EXTRA.
 */
const FIXED = new Set(['cmd', 'topic', 'payload', 'qos', 'retain', 'dup', 'brokerId', 'brokerCounter', 'clientId']);
// version(1) flags(1) topic length(2) broker id length(1) broker counter(8) client id length(2)
const HEAD = 15;
const HEAD_NO_CLIENT_ID = 13;

/**
 * A message on the bus as a compact frame: a fixed header, the topic, the
 * sending broker's id and counter, the publisher's client id, then the payload as
 * it is. What an aedes publish packet rarely carries beyond that (MQTT 5
 * properties, a command other than `publish`) travels as a V8-serialized extra.
 *
 * version(1) flags(1) topicLen(2) brokerIdLen(1) brokerCounter(f64) clientIdLen(2) topic brokerId clientId [extraLen(4) extra] payload
 */
export function encodeFrame(p: BusPacket): Buffer {
  let extra: Buffer | null = null;
  let flags = (Number(p.qos) & QOS) | (p.retain ? RETAIN : 0) | (p.dup ? DUP : 0) | (typeof p.payload === 'string' ? STRING_PAYLOAD : 0);
  const rest: Record<string, unknown> = {};
  let any = p.cmd !== undefined && p.cmd !== 'publish';
  if (any) rest.cmd = p.cmd;
  for (const k in p) {
    if (!FIXED.has(k) && p[k] !== undefined) { rest[k] = p[k]; any = true; }
  }
  if (any) { extra = serialize(rest); flags |= EXTRA; }
  const topic = Buffer.from(p.topic);
  const brokerId = Buffer.from(String(p.brokerId ?? ''));
  const clientId = typeof p.clientId === 'string' ? Buffer.from(p.clientId) : null;
  if (clientId) flags |= CLIENT_ID;
  if (topic.length > 0xffff || brokerId.length > 0xff || (clientId?.length ?? 0) > 0xffff) throw new RangeError('bus frame: topic, broker id or client id too long');
  const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
  const out = Buffer.allocUnsafe(HEAD + topic.length + brokerId.length + (clientId?.length ?? 0) + (extra ? 4 + extra.length : 0) + payload.length);
  out[0] = VERSION;
  out[1] = flags;
  out.writeUInt16BE(topic.length, 2);
  out[4] = brokerId.length;
  out.writeDoubleBE(Number(p.brokerCounter ?? 0), 5);
  out.writeUInt16BE(clientId?.length ?? 0, 13);
  let at = HEAD + topic.copy(out, HEAD);
  at += brokerId.copy(out, at);
  if (clientId) at += clientId.copy(out, at);
  if (extra) { out.writeUInt32BE(extra.length, at); at += 4 + extra.copy(out, at + 4); }
  payload.copy(out, at);
  return out;
}

/** The packet in `frame` (this release's, or the previous one's); throws on a frame it cannot read. */
export function decodeFrame(frame: Buffer): BusPacket {
  const version = frame[0];
  const head = version === VERSION ? HEAD : version === VERSION_NO_CLIENT_ID ? HEAD_NO_CLIENT_ID : 0;
  if (head === 0 || frame.length < head) throw new RangeError('bus frame: not a frame of this version');
  const flags = frame[1]!;
  const topicEnd = head + frame.readUInt16BE(2);
  const idEnd = topicEnd + frame[4]!;
  const clientIdEnd = idEnd + (head === HEAD ? frame.readUInt16BE(13) : 0);
  if (clientIdEnd > frame.length) throw new RangeError('bus frame: truncated');
  let at = clientIdEnd;
  let extra: Record<string, unknown> | null = null;
  if (flags & EXTRA) {
    const end = at + 4 + frame.readUInt32BE(at);
    if (end > frame.length) throw new RangeError('bus frame: truncated');
    extra = deserialize(frame.subarray(at + 4, end)) as Record<string, unknown>;
    at = end;
  }
  const body = frame.subarray(at);
  const packet: BusPacket = {
    cmd: 'publish',
    brokerId: frame.toString('utf8', topicEnd, idEnd),
    brokerCounter: frame.readDoubleBE(5),
    topic: frame.toString('utf8', head, topicEnd),
    payload: flags & STRING_PAYLOAD ? body.toString('utf8') : body,
    qos: flags & QOS,
    retain: (flags & RETAIN) !== 0,
    dup: (flags & DUP) !== 0,
  };
  if (flags & CLIENT_ID) packet.clientId = frame.toString('utf8', idEnd, clientIdEnd);
  return extra ? Object.assign(packet, extra) : packet;
}

/** Several frames for one channel as one bus message (one seal, one PUBLISH); a lone frame goes as itself. */
export function encodeFrames(frames: readonly Buffer[]): Buffer {
  if (frames.length === 1) return frames[0]!;
  let size = 1;
  for (const f of frames) size += 4 + f.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = BATCH;
  let at = 1;
  for (const f of frames) {
    out.writeUInt32BE(f.length, at);
    at += 4 + f.copy(out, at + 4);
  }
  return out;
}

/** The packets of a bus message, in the order they were sent; throws on anything this version cannot read. */
export function decodeFrames(message: Buffer): BusPacket[] {
  if (message[0] !== BATCH) return [decodeFrame(message)];
  const packets: BusPacket[] = [];
  let at = 1;
  while (at < message.length) {
    if (at + 4 > message.length) throw new RangeError('bus frame: truncated batch');
    const end = at + 4 + message.readUInt32BE(at);
    if (end > message.length) throw new RangeError('bus frame: truncated batch');
    packets.push(decodeFrame(message.subarray(at + 4, end)));
    at = end;
  }
  if (packets.length === 0) throw new RangeError('bus frame: empty batch');
  return packets;
}
