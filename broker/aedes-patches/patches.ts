/**
 * credbroker's changes to aedes, applied to its source text as it is loaded
 * (load.ts), never written into node_modules. Each is small, named, says why,
 * and is written so that it could be offered upstream as it stands. Each edit
 * names the exact text it replaces, in aedes AEDES_VERSION; edits of one file
 * apply in order, each to the text the previous one left.
 */

/** The aedes these patches were written against (package.json pins it). */
export const AEDES_VERSION = '1.2.0';

export interface Edit {
  readonly from: string;
  readonly to: string;
}

export interface AedesPatch {
  readonly name: string;
  /** Path inside the aedes package. */
  readonly file: string;
  readonly why: string;
  readonly edits: readonly Edit[];
}

/** Per CONNECT, stream.pipeline built an AbortController and, when it ended, an AbortError (a DOMException with a stack trace). */
const EMPTY_QUEUE: AedesPatch = {
  name: 'empty-queue-loop',
  file: 'lib/handlers/connect.js',
  why: 'CONNECT cost: the stored queue is read in a loop, not through stream.pipeline (an AbortController and an AbortError per CONNECT)',
  edits: [{
    from: `  client.resume()

  pipeline(
    outgoing,
    through(function clearQueue (data, enc, next) {
      const packet = new QoSPacket(data, client)
      // Here we are deliberatly passing only the error
      // This is because there is no destination stream so the "client"
      // Object filled the buffer up to the highWaterMark preventing stored messages
      // being sent
      packet.writeCallback = (error, _client) => next(error)
      const filter = (err) => emptyQueueFilter(err, client, packet)
      persistence.outgoingUpdate(client, packet)
        .then(() => filter(null, client, packet), err => filter(err, client, packet))
    }),
    done
  )
}
`,
    to: `  client.resume()

  // The queue is read in a loop, not through stream.pipeline, which builds an
  // AbortController and an AbortError (a DOMException with a stack trace) on
  // every CONNECT. Same order, same errors; \`done\` is still called on a later tick.
  drainOutgoing(outgoing, client).then(
    () => process.nextTick(done),
    (err) => process.nextTick(done, err))
}

async function drainOutgoing (outgoing, client) {
  const persistence = client.broker.persistence
  for await (const data of outgoing) {
    const packet = new QoSPacket(data, client)
    await new Promise((resolve, reject) => {
      packet.writeCallback = (error, _client) => error ? reject(error) : resolve()
      const filter = (err) => emptyQueueFilter(err, client, packet)
      persistence.outgoingUpdate(client, packet)
        .then(() => filter(null, client, packet), err => filter(err, client, packet))
    })
  }
}
`,
  }],
};

/** Per close, an Error (with its stack trace) was built for pending drain callbacks even when there were none. */
const CLOSE_ERROR: AedesPatch = {
  name: 'close-error-lazy',
  file: 'lib/client.js',
  why: 'close cost: the "connection closed" error is built only when a drain callback waits for it',
  edits: [{
    from: `    const error = new Error('connection closed')
    const pending = this._pendingDrains
    this._pendingDrains = []
    for (let i = 0; i < pending.length; i++) {`,
    to: `    const pending = this._pendingDrains
    this._pendingDrains = []
    const error = pending.length > 0 ? new Error('connection closed') : null
    for (let i = 0; i < pending.length; i++) {`,
  }],
};

/** [MQTT-3.3.1-1]: a queued PUBLISH that already had a packet id was sent before; sent again on a resumed session, it is a redelivery. */
const REDELIVERY_DUP: AedesPatch = {
  name: 'redelivery-dup',
  file: 'lib/handlers/connect.js',
  why: '[MQTT-3.3.1-1] a QoS 1/2 PUBLISH sent again on a resumed session carries DUP=1 (one that never left the queue keeps DUP=0)',
  edits: [{
    from: `    const packet = new QoSPacket(data, client)
    await new Promise((resolve, reject) => {`,
    to: `    const packet = new QoSPacket(data, client)
    // A stored packet id was given when the packet was sent: this is a redelivery [MQTT-3.3.1-1]
    if (packet.cmd === 'publish' && data.messageId) packet.dup = true
    await new Promise((resolve, reject) => {`,
  }],
};

/** [MQTT-3.2.2-2]: a persistent session that holds no subscription is still a session. */
const SESSION_PRESENT: AedesPatch = {
  name: 'session-present-empty',
  file: 'lib/handlers/connect.js',
  why: '[MQTT-3.2.2-2] Session Present is 1 for a stored session even when it holds no subscription; a persistence says so with `sessionPresent` on the list it answers',
  edits: [{
    from: `function gotSubs (subs, client) {
  client.arg.subs = subs.length > 0 ? subs : null
  client.done()
}

function restoreSubs (arg, done) {
  if (arg.subs) {
    handleSubscribe(this.client, { subscriptions: arg.subs }, true, done)
    arg.sessionPresent = !!arg.subs // cast to boolean, [MQTT-3.2.2-2]
    return
  }
  arg.sessionPresent = false // [MQTT-3.2.2-1], [MQTT-3.2.2-3]
  done()
}`,
    to: `function gotSubs (subs, client) {
  client.arg.subs = subs.length > 0 ? subs : null
  // [MQTT-3.2.2-2]: a stored session with no subscription is present too (the persistence knows it)
  client.arg.sessionPresent = subs.length > 0 || subs.sessionPresent === true
  client.done()
}

function restoreSubs (arg, done) {
  if (arg.subs) {
    handleSubscribe(this.client, { subscriptions: arg.subs }, true, done)
    return
  }
  done()
}`,
  }],
};

/** A filter over the level cap is well-formed: the server may refuse it, in its SUBACK. */
const LEVEL_CAP_SUBACK: AedesPatch = {
  name: 'level-cap-suback',
  file: 'lib/handlers/subscribe.js',
  why: '[MQTT-3.9.3] a well-formed filter deeper than maxTopicLevels is refused with SUBACK 0x80, not by closing the connection',
  edits: [{
    from: `  const err = validateTopic(sub.topic, 'SUBSCRIBE', client.broker.maxTopicLevels)
  if (err) {
    return done(err)
  }`,
    to: `  const err = validateTopic(sub.topic, 'SUBSCRIBE', client.broker.maxTopicLevels)
  if (err) {
    // deeper than the cap but well-formed: refused within the protocol (0x80)
    if (validateTopic(sub.topic, 'SUBSCRIBE', 0) === undefined) return done(null, null)
    return done(err)
  }`,
  }],
};

/**
 * [MQTT-3.8.4-6] retained messages at no more than the granted QoS, under a
 * wildcard too (aedes downgraded only when the filter equalled the topic), and
 * [MQTT-3.3.1-9]: a SUBSCRIBE's retained messages come before the live ones
 * on its filters, and a retained message published just before it is sent
 * once, as the retained copy.
 */
const RETAINED_REPLAY: AedesPatch = {
  name: 'retained-replay',
  file: 'lib/handlers/subscribe.js',
  why: '[MQTT-3.8.4-6] replayed retained messages are downgraded to the QoS granted to the filters they match; [MQTT-3.3.1-9] live messages on a new subscription wait for its retained replay, go out with RETAIN 0, and one the replay already sent is not sent again',
  edits: [
    {
      from: `  func = function handlePacketSubscription (_packet, cb) {
    _packet = new Packet(_packet, broker)`,
      to: `  func = function handlePacketSubscription (_packet, cb) {
    if (client._retainedWindows?.size > 0 && windowTakes(client, topic, _packet, handlePacketSubscription)) return cb()
    _packet = new Packet(_packet, broker)`,
    },
    {
      from: `  runParallel(state, doSubscribe, packet.subscriptions, (err) => {
    if (err) {
      done(err)
    } else if (restore) {
      done()
    } else {
      completeSubscribe.call(state)
    }
  })`,
      to: `  // opened before the first subscription is added: a live message may come at once
  const window = restore ? null : new RetainedWindow(client, packet.subscriptions)
  runParallel(state, doSubscribe, packet.subscriptions, (err) => {
    if (err) {
      if (window) window.close()
      done(err)
    } else if (restore) {
      done()
    } else {
      completeSubscribe.call(state, window)
    }
  })`,
    },
    {
      from: `function completeSubscribe () {
  const done = this.finish
  const packet = this.packet
  const client = this.client

  if (packet.messageId !== undefined) {
    // [MQTT-3.9.3-1]
    write(client,
      new SubAck(packet, this.subState.map(obj => obj.granted)),
      done)
  } else {
    done()
  }
`,
      to: `function completeSubscribe (window) {
  const done = this.finish
  const packet = this.packet
  const client = this.client

  // MQTT 3.1.1 3.8.4 lets the matching PUBLISH packets come before the SUBACK:
  // it goes once the replay has read the store (or sent SUBACK_AFTER messages),
  // so that a message published after the SUBACK is never replayed as retained
  const granted = this.subState.map(obj => obj.granted)
  const ack = once(() => {
    if (packet.messageId !== undefined) {
      // [MQTT-3.9.3-1]
      write(client, new SubAck(packet, granted), done)
    } else {
      done()
    }
  })
`,
    },
    {
      from: `    const stream = persistence.createRetainedStreamCombi(topics)
    stream.pipe(through(function sendRetained (packet, enc, cb) {
      packet = new Packet({
        cmd: packet.cmd,
        qos: packet.qos,`,
      to: `    const stream = persistence.createRetainedStreamCombi(topics)
    let sent = 0
    const replay = through(function sendRetained (packet, enc, cb) {
      if (!window.sendFirst(packet)) return cb()
      if (++sent === SUBACK_AFTER) ack()
      packet = new Packet({
        cmd: packet.cmd,
        qos: Math.min(packet.qos, grantedQoS(subs, packet.topic)),`,
    },
    {
      from: `      packet.brokerId = null
      client.deliverQoS(packet, cb)
    }))
  }
}
`,
      to: `      packet.brokerId = null
      client.deliverQoS(packet, cb)
    })
    finished(replay, { readable: false }, () => { ack(); window.close() })
    stream.pipe(replay)
  } else {
    ack()
    window.close()
  }
}

// A SUBSCRIBE's retained window (LiveHold, in utils.js): while its replay runs,
// the live messages on its filters wait, and go out after the replay's last one
// and the SUBACK, with RETAIN 0; a retained message the replay sent goes out once.
// A client keeps at most MAX_WINDOWS (a SUBSCRIBE flood): a new one ends the
// oldest, whose held messages go out at once.
const SUBACK_AFTER = 1000
const MAX_WINDOWS = 16

class RetainedWindow extends LiveHold {
  constructor (client, subs) {
    super()
    this.client = client
    this.filters = new Set(subs.map(sub => sub.topic))
    const windows = client._retainedWindows ??= new Set()
    if (windows.size >= MAX_WINDOWS) {
      const oldest = windows.values().next().value
      windows.delete(oldest)
      oldest.release()
    }
    windows.add(this)
  }

  close () {
    this.done(() => {
      // the last one takes the set with it: an idle client keeps no empty set
      const windows = this.client._retainedWindows
      if (windows?.delete(this) && windows.size === 0) this.client._retainedWindows = null
    })
  }
}

// true when a retained window of this client holds the live message on filter, or drops it
function windowTakes (client, filter, packet, deliver) {
  for (const w of client._retainedWindows) {
    if (w.filters.has(filter) && w.takes(packet, deliver)) return true
  }
  return false
}

// the highest QoS granted to the filters of this SUBSCRIBE that match topic
function grantedQoS (subs, topic) {
  let qos = 0
  for (const sub of subs) {
    if (sub.qos !== 128 && sub.qos > qos && filterMatches(sub.topic, topic)) qos = sub.qos
  }
  return qos
}

// MQTT 4.7: \`+\` one level (empty too), \`#\` the rest (its parent too); a wildcard
// first level never matches a \`$\` topic [MQTT-4.7.2-1]
function filterMatches (filter, topic) {
  const f = filter.split('/')
  const t = topic.split('/')
  if ((f[0] === '+' || f[0] === '#') && topic.charCodeAt(0) === 36) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}
`,
    },
    {
      from: `import { through, validateTopic, $SYS_PREFIX, runFall, runParallel, once } from '../utils.js'
`,
      to: `import { finished } from 'node:stream'
import { through, validateTopic, $SYS_PREFIX, runFall, runParallel, once, LiveHold } from '../utils.js'
`,
    },
  ],
};

/**
 * [MQTT-4.6.0-6] a resumed session's stored queue goes out before the live
 * messages on its restored subscriptions (aedes sent both as they came), and a
 * queued message whose live copy also reaches the client (on a bus, published
 * before the reconnect and heard after it) goes out once.
 */
const RESUME_ORDER: AedesPatch = {
  name: 'resume-order',
  file: 'lib/handlers/connect.js',
  why: '[MQTT-4.6.0-6] live messages on a resumed session wait until its stored queue has been sent; a queued message is not sent again live',
  edits: [
    {
      from: `  if (arg.subs) {
    handleSubscribe(this.client, { subscriptions: arg.subs }, true, done)`,
      to: `  if (arg.subs) {
    // before the subscriptions are back: a live message may come at once
    this.client._queueWindow = new LiveHold()
    handleSubscribe(this.client, { subscriptions: arg.subs }, true, done)`,
    },
    {
      from: `async function drainOutgoing (outgoing, client) {
  const persistence = client.broker.persistence
  for await (const data of outgoing) {
`,
      to: `async function drainOutgoing (outgoing, client) {
  const persistence = client.broker.persistence
  const window = client._queueWindow
  for await (const data of outgoing) {
    // its live copy went out already (the window had stopped holding)
    if (window && !window.sendFirst(data)) continue
`,
    },
    {
      from: `  drainOutgoing(outgoing, client).then(
    () => process.nextTick(done),
    (err) => process.nextTick(done, err))`,
      to: `  const closeWindow = () => {
    const w = client._queueWindow
    if (w) w.done(() => { if (client._queueWindow === w) client._queueWindow = null })
  }
  drainOutgoing(outgoing, client).then(
    () => { closeWindow(); process.nextTick(done) },
    (err) => { closeWindow(); process.nextTick(done, err) })`,
    },
    {
      from: `import { runSeries, through } from '../utils.js'`,
      to: `import { runSeries, through, LiveHold } from '../utils.js'`,
    },
  ],
};

/**
 * What retained-replay and resume-order share, in aedes' utils.js: live messages
 * held while a client is sent what must come first.
 */
const LIVE_HOLD: AedesPatch = {
  name: 'live-hold',
  file: 'lib/utils.js',
  why: 'the hold that retained-replay and resume-order share: live messages wait, in order, while what must come first is sent, and each message goes out once',
  edits: [{
    from: `export const $SYS_PREFIX = '$SYS/'
`,
    to: `export const $SYS_PREFIX = '$SYS/'

// Live messages held, in order, while a client is sent what comes first (a new
// subscription's retained messages, a resumed session's stored queue), then
// handed on. A message sent first goes out once: its live copy, held or coming
// up to LATE_COPY_MS after (on a bus it may come late), is dropped. Past HOLD_MAX
// held messages it stops holding; then a message that went out live is not sent
// again first. Messages are known by their broker-wide id (brokerId/brokerCounter).
const HOLD_MAX = 1000
const LATE_COPY_MS = 5000

export class LiveHold {
  constructor () {
    this.sentFirst = new Set()
    this.live = new Set()
    this.held = []
    this.catchingUp = true
  }

  // false when the packet's live copy went out already
  sendFirst (packet) {
    const id = broadcastId(packet)
    if (id === null) return true
    if (this.live.has(id)) return false
    this.sentFirst.add(id)
    return true
  }

  // true when the live packet is held, or dropped (it was sent first);
  // deliver hands a held one on when the hold ends
  takes (packet, deliver) {
    const id = broadcastId(packet)
    if (id !== null && this.sentFirst.has(id)) return true
    if (this.held !== null) {
      this.held.push([packet, deliver])
      if (this.held.length >= HOLD_MAX) this.release()
      return true
    }
    if (id !== null && this.catchingUp) this.live.add(id)
    return false
  }

  release () {
    const held = this.held
    if (held === null) return
    this.held = null
    for (const [packet, deliver] of held) deliver(packet, noop)
  }

  // what comes first is sent: the held messages go out, and forget runs LATE_COPY_MS later
  done (forget) {
    this.catchingUp = false
    this.live.clear()
    this.release()
    // nothing was sent first: no late copy to drop, so nothing to keep
    if (this.sentFirst.size === 0) forget()
    else setTimeout(forget, LATE_COPY_MS).unref()
  }
}

function broadcastId (packet) {
  return packet.cmd === 'publish' && packet.brokerId ? packet.brokerId + '/' + packet.brokerCounter : null
}
`,
  }],
};

/** The live side of resume-order: a resumed session's restored subscriptions deliver through its queue window. */
const RESUME_ORDER_HOLD: AedesPatch = {
  name: 'resume-order-hold',
  file: 'lib/handlers/subscribe.js',
  why: '[MQTT-4.6.0-6] a live message on a resumed session\'s subscription waits for its stored queue (connect.js, resume-order)',
  edits: [{
    from: `    if (client._retainedWindows?.size > 0 && windowTakes(client, topic, _packet, handlePacketSubscription)) return cb()`,
    to: `    if (client._queueWindow && client._queueWindow.takes(_packet, handlePacketSubscription)) return cb()
    if (client._retainedWindows?.size > 0 && windowTakes(client, topic, _packet, handlePacketSubscription)) return cb()`,
  }],
};

/** Per client, mqtt-packet's parser kept its bytes in a bl stream (a Duplex: two stream states) whose stream side nothing uses. */
const PARSER_PLAIN_LIST: AedesPatch = {
  name: 'parser-plain-list',
  file: 'lib/client.js',
  why: 'memory per idle client: the parser buffers bytes in a plain bl BufferList (the same methods) instead of a BufferListStream, about 900 bytes less a client',
  edits: [{
    from: `import { pipeline, finished } from 'stream'
import { through } from './utils.js'
`,
    to: `import { pipeline, finished } from 'stream'
import { through } from './utils.js'

// The BufferList behind bl's stream: the parser calls only its methods (append,
// consume, length, read*, slice, toString), never the stream's. Absent in
// another bl: the parser keeps its own.
const PlainBufferList = mqtt.parser()._list.constructor.BufferList
`,
  }, {
    from: `    this._parser = mqtt.parser()
`,
    to: `    this._parser = mqtt.parser()
    if (PlainBufferList) this._parser._list = new PlainBufferList()
`,
  }],
};

/**
 * Per idle client, aedes kept what only a later event needs: stream.finished's
 * seven closures and their context on the socket, two bound copies each of
 * `close` and `emit('error')`, an empty dedupe dictionary and QoS 2 window, and, as the parser's
 * settings, the whole CONNECT packet (its password too).
 */
const IDLE_CLIENT: AedesPatch = {
  name: 'idle-client',
  file: 'lib/client.js',
  why: 'memory per idle client: the socket\'s close is heard by one listener instead of stream.finished, one bound function serves two listeners, the dedupe dictionary is made on the first delivery and the QoS 2 window on the first QoS 2 PUBLISH, and the parser keeps the CONNECT\'s protocol version instead of the CONNECT (and its password)',
  edits: [{
    from: `    this.duplicates = Object.create(null)
`,
    to: `    this.duplicates = null // made by dedupe on the first delivery
`,
  }, {
    from: `    this._inboundInflight = new Set()
`,
    to: `    this._inboundInflight = null // made on the first QoS 2 PUBLISH (inbound-inflight-lazy)
`,
  }, {
    from: `    conn.on('error', this.emit.bind(this, 'error'))
    this._parser.on('error', this.emit.bind(this, 'error'))

    conn.on('end', this.close.bind(this))
    this._eos = finished(this.conn, this.close.bind(this))
`,
    to: `    const emitError = this.emit.bind(this, 'error')
    conn.on('error', emitError)
    this._parser.on('error', emitError)

    // 'end' and 'error' are heard here already: of stream.finished only 'close'
    // is left, which a destroyed socket or WebSocket stream emits
    const close = this.close.bind(this)
    conn.on('end', close)
    conn.on('close', close)
    if (conn.destroyed) process.nextTick(close)
    this._eos = noop
`,
  }, {
    from: `  const duplicates = client.duplicates
`,
    to: `  const duplicates = client.duplicates ??= Object.create(null)
`,
  }, {
    from: `function enqueue (packet) {
  const client = this.client
`,
    to: `function enqueue (packet) {
  const client = this.client
  // mqtt-packet keeps the CONNECT as its settings for the connection's life; it
  // reads only these two of it
  if (this.settings === packet) this.settings = { protocolVersion: packet.protocolVersion, bridgeMode: packet.bridgeMode }
`,
  }],
};

/** The QoS 2 receive window of idle-client, made when it is first needed. */
const INFLIGHT_LAZY: AedesPatch = {
  name: 'inbound-inflight-lazy',
  file: 'lib/handlers/publish.js',
  why: 'memory per idle client: the inbound QoS 2 window (a Set) is made on the first QoS 2 PUBLISH (idle-client leaves it null)',
  edits: [{
    from: `          const inflight = client._inboundInflight
`,
    to: `          const inflight = client._inboundInflight ??= new Set()
`,
  }],
};

/** PUBREL on a connection that has had no QoS 2 PUBLISH (a resumed session's) finds no window. */
const INFLIGHT_LAZY_PUBREL: AedesPatch = {
  name: 'inbound-inflight-lazy-pubrel',
  file: 'lib/handlers/pubrel.js',
  why: 'a PUBREL before any QoS 2 PUBLISH on this connection has no window to release a slot from (inbound-inflight-lazy)',
  edits: [{
    from: `    client._inboundInflight.delete(arg.packet.messageId)
`,
    to: `    client._inboundInflight?.delete(arg.packet.messageId)
`,
  }],
};

/**
 * When another broker on the bus is born (a restarted worker), aedes resets every
 * client's dedupe counter for it; a client that has had no delivery yet has no
 * dictionary (idle-client). Without this, that reset threw and took the worker down.
 */
const IDLE_CLIENT_BIRTH: AedesPatch = {
  name: 'idle-client-birth',
  file: 'aedes.js',
  why: 'a broker born on the bus resets the dedupe counters of the clients that have one (idle-client makes them on the first delivery)',
  edits: [{
    from: `          delete that.clients[clientId].duplicates[brokerId]
`,
    to: `          const duplicates = that.clients[clientId].duplicates
          if (duplicates) delete duplicates[brokerId]
`,
  }],
};

/** In the order they apply. */
export const PATCHES: readonly AedesPatch[] = [LIVE_HOLD, EMPTY_QUEUE, REDELIVERY_DUP, SESSION_PRESENT, CLOSE_ERROR, LEVEL_CAP_SUBACK, RETAINED_REPLAY, RESUME_ORDER, RESUME_ORDER_HOLD, PARSER_PLAIN_LIST, IDLE_CLIENT, IDLE_CLIENT_BIRTH, INFLIGHT_LAZY, INFLIGHT_LAZY_PUBREL];
