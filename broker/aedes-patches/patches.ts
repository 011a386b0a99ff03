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
 * [MQTT-3.3.1-9]: a retained message published just before a SUBSCRIBE is sent
 * once, either live or as the retained copy, never both.
 */
const RETAINED_REPLAY: AedesPatch = {
  name: 'retained-replay',
  file: 'lib/handlers/subscribe.js',
  why: '[MQTT-3.8.4-6] replayed retained messages are downgraded to the QoS granted to the filters they match; [MQTT-3.3.1-9] a retained message delivered live since the SUBSCRIBE is not replayed again (nor replayed then delivered live)',
  edits: [
    {
      from: `  func = function handlePacketSubscription (_packet, cb) {
    _packet = new Packet(_packet, broker)
    _packet.nl = nl
    if (!rap) _packet.retain = false`,
      to: `  func = function handlePacketSubscription (_packet, cb) {
    const retained = _packet.retain ? liveRetained(client, topic, _packet) : LIVE
    if (retained === SKIP) return cb()
    _packet = new Packet(_packet, broker)
    _packet.nl = nl
    if (!rap && retained !== AS_RETAINED) _packet.retain = false`,
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
      to: `  // opened before the first subscription is added: a live copy may come at once
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
      from: `function completeSubscribe () {`,
      to: `function completeSubscribe (window) {`,
    },
    {
      from: `    const stream = persistence.createRetainedStreamCombi(topics)
    stream.pipe(through(function sendRetained (packet, enc, cb) {
      packet = new Packet({
        cmd: packet.cmd,
        qos: packet.qos,`,
      to: `    const stream = persistence.createRetainedStreamCombi(topics)
    const replay = through(function sendRetained (packet, enc, cb) {
      if (!window.replayOnce(packet)) return cb()
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
    finished(replay, { readable: false }, () => window.close())
    stream.pipe(replay)
  } else {
    window.close()
  }
}

// A SUBSCRIBE's retained window: from before its subscriptions are added until
// RETAINED_WINDOW_MS after its replay ends (a live copy may travel a slower path,
// a bus, than the store read), the retained messages its filters got live and
// replayed, by their broker-wide identity, so that each goes out once. One that
// comes live while the replay runs was published before the SUBSCRIBE was
// done: it goes out as the retained copy (RETAIN 1), and the replay skips it.
const RETAINED_WINDOW_MS = 2000
const LIVE = 0
const SKIP = 1
const AS_RETAINED = 2

class RetainedWindow {
  constructor (client, subs) {
    this.client = client
    this.filters = new Set(subs.map(sub => sub.topic))
    this.live = new Set()
    this.replayed = new Set()
    this.replaying = true
    ;(client._retainedWindows ??= new Set()).add(this)
  }

  // false when the message already went out live since the SUBSCRIBE
  replayOnce (packet) {
    const key = retainedKey(packet)
    if (key === null) return true
    if (this.live.has(key)) return false
    this.replayed.add(key)
    return true
  }

  close () {
    this.replaying = false
    setTimeout(() => this.client._retainedWindows.delete(this), RETAINED_WINDOW_MS).unref()
  }
}

// how a retained-flagged live message on the subscription to filter goes out
function liveRetained (client, filter, packet) {
  const windows = client._retainedWindows
  const key = windows && windows.size > 0 ? retainedKey(packet) : null
  if (key === null) return LIVE
  let how = LIVE
  for (const w of windows) {
    if (!w.filters.has(filter)) continue
    if (w.replayed.has(key)) return SKIP
    if (w.replaying) how = AS_RETAINED
  }
  for (const w of windows) if (w.filters.has(filter)) w.live.add(key)
  return how
}

function retainedKey (packet) {
  return packet.brokerId ? packet.brokerId + '/' + packet.brokerCounter : null
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
import { through, validateTopic, $SYS_PREFIX, runFall, runParallel, once } from '../utils.js'
`,
    },
  ],
};

/** In the order they apply. */
export const PATCHES: readonly AedesPatch[] = [EMPTY_QUEUE, REDELIVERY_DUP, SESSION_PRESENT, CLOSE_ERROR, LEVEL_CAP_SUBACK, RETAINED_REPLAY];
