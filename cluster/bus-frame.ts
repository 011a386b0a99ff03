import { deserialize, serialize } from 'node:v8';

/** A message as aedes hands it to its `mq` (aedes-packet): what crosses the bus. */
export type BusPacket = { topic: string; payload: Buffer | string } & Record<string, unknown>;

const VERSION = 1;
/** A run of frames for one channel, sent as one bus message: BATCH, then each frame as length(4) frame. */
const BATCH = 2;
const QOS = 0b11;
const RETAIN = 1 << 2;
const DUP = 1 << 3;
const STRING_PAYLOAD = 1 << 4;
const EXTRA = 1 << 5;
/** The fields every aedes packet has, in the frame's fixed part; any other field travels in EXTRA. */
const FIXED = new Set(['cmd', 'topic', 'payload', 'qos', 'retain', 'dup', 'brokerId', 'brokerCounter']);
// version(1) flags(1) topic length(2) broker id length(1) broker counter(8)
const HEAD = 13;

/**
 * A message on the bus as a compact frame: a fixed header, the topic, the
 * sending broker's id and counter, then the payload as it is. What an aedes
 * publish packet rarely carries beyond that (a client id, MQTT 5 properties, a
 * command other than `publish`) travels as a V8-serialized extra.
 *
 * version(1) flags(1) topicLen(2) brokerIdLen(1) brokerCounter(f64) topic brokerId [extraLen(4) extra] payload
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
  if (topic.length > 0xffff || brokerId.length > 0xff) throw new RangeError('bus frame: topic or broker id too long');
  const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
  const out = Buffer.allocUnsafe(HEAD + topic.length + brokerId.length + (extra ? 4 + extra.length : 0) + payload.length);
  out[0] = VERSION;
  out[1] = flags;
  out.writeUInt16BE(topic.length, 2);
  out[4] = brokerId.length;
  out.writeDoubleBE(Number(p.brokerCounter ?? 0), 5);
  let at = HEAD + topic.copy(out, HEAD);
  at += brokerId.copy(out, at);
  if (extra) { out.writeUInt32BE(extra.length, at); at += 4 + extra.copy(out, at + 4); }
  payload.copy(out, at);
  return out;
}

/** The packet in `frame`; throws on a frame this version cannot read. */
export function decodeFrame(frame: Buffer): BusPacket {
  if (frame.length < HEAD || frame[0] !== VERSION) throw new RangeError('bus frame: not a frame of this version');
  const flags = frame[1]!;
  const topicEnd = HEAD + frame.readUInt16BE(2);
  const idEnd = topicEnd + frame[4]!;
  if (idEnd > frame.length) throw new RangeError('bus frame: truncated');
  let at = idEnd;
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
    topic: frame.toString('utf8', HEAD, topicEnd),
    payload: flags & STRING_PAYLOAD ? body.toString('utf8') : body,
    qos: flags & QOS,
    retain: (flags & RETAIN) !== 0,
    dup: (flags & DUP) !== 0,
  };
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
