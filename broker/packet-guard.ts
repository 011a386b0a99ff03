import { isUtf8 } from 'node:buffer';
import type { Aedes, Client } from 'aedes';
import type { ParsedPacket } from './packet-rules.js';
import type { WireLimits } from './limits.js';
import { breaksRule, connackAfterParse, connackBeforeParse } from './packet-rules.js';

/** Why the packet guard closed a connection (the metric label). */
export type WireViolationReason = 'packet_too_large' | 'connect_too_large' | 'invalid_utf8' | 'malformed' | 'protocol_version' | 'identifier_rejected';

/** A packet the broker refuses to read: the connection is closed (MQTT 3.1.1 has no error packet). */
export class WireViolation extends Error {
  constructor(readonly reason: WireViolationReason, message: string) {
    super(message);
  }
}

/**
 * The part of mqtt-packet's parser (one per aedes client, `client._parser`) that
 * the guard wraps. Checked against mqtt-packet 9.0.2 under aedes 1.2.0; a
 * changed shape fails closed (see `guard`), and test/hostile-wire-limits.test.ts
 * fails with it.
 */
interface Parser {
  packet: ParsedPacket & { clientId?: string };
  _list: { length: number; slice(start: number, end: number): Buffer; readUInt8(offset: number): number };
  _pos: number;
  error: Error | null;
  /** The CONNECT, once parsed: its protocol level is the connection's. */
  settings?: { protocolVersion?: number };
  _parseLength(): boolean;
  _parsePayload(): boolean;
  _newPacket(): boolean;
  _parseString(maybeBuffer?: boolean): string | null;
  _emitError(err: Error): void;
  [STATE]?: GuardState;
}

interface GuardState {
  readonly client: Client;
  readonly limits: WireLimits;
  readonly hooks: GuardHooks;
}

export interface GuardHooks {
  /** True once the client's credential was accepted (before its CONNACK is written). */
  readonly authenticated: (client: Client) => boolean;
  readonly onViolation: (client: Client, v: WireViolation) => void;
  /** The guard could not be installed (aedes or mqtt-packet changed); the connection is closed. */
  readonly onBroken: (err: Error) => void;
}

const STATE = Symbol('credbroker.packetGuard');
let parseLength: Parser['_parseLength'] | null = null;
let parseString: Parser['_parseString'] | null = null;
let parsePayload: Parser['_parsePayload'] | null = null;
let newPacket: Parser['_newPacket'] | null = null;

/**
 * Checks the remaining length as soon as the fixed header has been read, before
 * the parser waits for (and buffers) the body: the same parser serves TCP, TLS
 * and WebSocket, so a packet spread over many small WebSocket frames is caught
 * at its header too. One comparison per packet, nothing per byte.
 */
function guardedParseLength(this: Parser): boolean {
  if (!parseLength!.call(this)) return false;
  const g = this[STATE]!;
  const authenticated = g.hooks.authenticated(g.client);
  const bound = authenticated ? g.limits.maxPacketBytes : g.limits.connectPacketBytes;
  if (this.packet.length <= bound) return true;
  const v = authenticated
    ? new WireViolation('packet_too_large', `${this.packet.cmd} of ${this.packet.length} bytes over maxPacketBytes ${bound}`)
    : new WireViolation('connect_too_large', `${this.packet.cmd} of ${this.packet.length} bytes before authentication, over ${bound}`);
  refuse(this, v);
  return false;
}

/**
 * MQTT 3.1.1 §1.5.3: a string that is not well-formed UTF-8, or holds U+0000,
 * closes the connection. The decoder turns bad bytes into U+FFFD, so the bytes
 * are only checked when the decoded string holds one (or a NUL): the common
 * path costs two scans of a short string.
 */
function guardedParseString(this: Parser, maybeBuffer?: boolean): string | null {
  const start = this._pos + 2;
  const s = parseString!.call(this, maybeBuffer);
  if (s === null || (s.indexOf('\uFFFD') === -1 && s.indexOf('\u0000') === -1)) return s;
  if (s.indexOf('\u0000') === -1 && isUtf8(this._list.slice(start, this._pos))) return s;
  // The caller goes on parsing this packet, but with `error` set the parser
  // never emits it and stops.
  refuse(this, new WireViolation('invalid_utf8', `${this.packet.cmd} holds a string that is not well-formed UTF-8 (or holds U+0000)`));
  return s;
}

/** The packet's body, as the parser holds it once it is whole. */
function body(parser: Parser) {
  const list = parser._list;
  return { length: Math.min(parser.packet.length, list.length), byteAt: (i: number) => list.readUInt8(i) };
}

/** A CONNECT whose protocol level MQTT 3.1.1 answers with CONNACK 1 is answered so, before the parser closes without a word. */
function guardedParsePayload(this: Parser): boolean {
  if (this.packet.cmd === 'connect' && this._list.length >= this.packet.length) {
    const code = connackBeforeParse(body(this));
    if (code !== null) {
      refuseWith(this, code, new WireViolation('protocol_version', 'CONNECT of an unsupported protocol level [MQTT-3.1.2-2]'));
      return false;
    }
  }
  return parsePayload!.call(this);
}

/** The rules the parser does not check (packet-rules.ts), before aedes gets the packet. */
function guardedNewPacket(this: Parser): boolean {
  const packet = this.packet;
  const rule = breaksRule(packet, body(this), this._pos, this.settings?.protocolVersion ?? packet.protocolVersion);
  if (rule !== null) {
    refuse(this, new WireViolation('malformed', rule));
    return false;
  }
  const code = connackAfterParse(packet);
  if (code !== null) {
    refuseWith(this, code, new WireViolation('identifier_rejected', 'CONNECT with an empty client id [MQTT-3.1.3-8]'));
    return false;
  }
  return newPacket!.call(this);
}

/** A refusal CONNACK (MQTT 3.1.1 form), then the close. */
function refuseWith(parser: Parser, returnCode: number, v: WireViolation): void {
  parser[STATE]!.client.conn.write(Buffer.from([0x20, 0x02, 0x00, returnCode]));
  refuse(parser, v);
}

function refuse(parser: Parser, v: WireViolation): void {
  const g = parser[STATE]!;
  g.hooks.onViolation(g.client, v);
  parser._emitError(v);
}

/** Installs the guard on an aedes client's parser; throws if the parser is not the one it knows. */
export function guardClient(client: Client, limits: WireLimits, hooks: GuardHooks): void {
  const parser = (client as unknown as { _parser?: Parser })._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._parseString !== 'function' || typeof parser._parsePayload !== 'function'
    || typeof parser._newPacket !== 'function' || !('_list' in parser)) {
    throw new Error('aedes/mqtt-packet internals changed: the packet guard cannot bound this connection');
  }
  parseLength ??= Object.getPrototypeOf(parser)._parseLength as Parser['_parseLength'];
  parseString ??= Object.getPrototypeOf(parser)._parseString as Parser['_parseString'];
  parser[STATE] = { client, limits, hooks };
  parser._parseLength = guardedParseLength;
  parser._parseString = guardedParseString;
  parsePayload ??= Object.getPrototypeOf(parser)._parsePayload as Parser['_parsePayload'];
  newPacket ??= Object.getPrototypeOf(parser)._newPacket as Parser['_newPacket'];
  parser._parsePayload = guardedParsePayload;
  parser._newPacket = guardedNewPacket;
}

/**
 * Wraps `aedes.handle` so that every connection, whichever listener accepted
 * it, is read through the packet guard. A guard that cannot be installed
 * closes the connection: better no service than an unbounded one.
 */
export function guardConnections(aedes: Aedes, limits: WireLimits, hooks: GuardHooks): void {
  const handle = aedes.handle.bind(aedes);
  aedes.handle = (conn, req) => {
    const client = handle(conn, req);
    try {
      guardClient(client, limits, hooks);
    } catch (err) {
      hooks.onBroken(err as Error);
      conn.destroy();
    }
    return client;
  };
}
