#!/usr/bin/env node
/**
 * `postinstall`: two small upstream-style patches to aedes 1.2.0 in
 * node_modules (README "aedes patches" says what and why). Each patch names the
 * exact text it replaces: a file that already holds the patched text is left
 * alone (the script is idempotent), and a file that holds neither fails the
 * install loudly, because aedes changed and the patch must be looked at again.
 *
 * Usage: node scripts/patch-aedes.mjs [PROJECT_DIR]   (default: the aedes this package resolves)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Per CONNECT, stream.pipeline builds an AbortController and, when it ends, an AbortError (a DOMException with a stack trace). */
const EMPTY_QUEUE = {
  file: 'lib/handlers/connect.js',
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

  // credbroker patch (scripts/patch-aedes.mjs): the queue is read in a loop, not
  // through stream.pipeline, which builds an AbortController and an AbortError
  // (a DOMException with a stack trace) on every CONNECT. Same order, same
  // errors; \`done\` is still called on a later tick.
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
};

/** Per close, an Error (with its stack trace) was built for pending drain callbacks even when there were none. */
const CLOSE_ERROR = {
  file: 'lib/client.js',
  from: `    // Flush pending drain callbacks with connection closed error
    const error = new Error('connection closed')
    const pending = this._pendingDrains
    this._pendingDrains = []
    for (let i = 0; i < pending.length; i++) {
      setImmediate(pending[i], error, this)
    }
`,
  to: `    // Flush pending drain callbacks with connection closed error
    // (credbroker patch, scripts/patch-aedes.mjs: the error is built only when a callback waits)
    const pending = this._pendingDrains
    this._pendingDrains = []
    const error = pending.length > 0 ? new Error('connection closed') : null
    for (let i = 0; i < pending.length; i++) {
      setImmediate(pending[i], error, this)
    }
`,
};

export const PATCHES = [EMPTY_QUEUE, CLOSE_ERROR];

/**
 * Applies every patch under `aedesDir`; returns what was done per file. Every
 * file is checked before any is written: a changed aedes is left untouched.
 * @throws Error when a file holds neither the text a patch replaces nor its result.
 */
export function patchAedes(aedesDir) {
  const plan = PATCHES.map((p) => {
    const path = join(aedesDir, p.file);
    const text = readFileSync(path, 'utf8');
    if (text.includes(p.to)) return { p, path, text: null };
    const at = text.indexOf(p.from);
    if (at === -1 || text.indexOf(p.from, at + 1) !== -1) {
      throw new Error(`${path} does not hold the exact text this patch replaces: aedes changed; review scripts/patch-aedes.mjs against the new version`);
    }
    return { p, path, text: text.slice(0, at) + p.to + text.slice(at + p.from.length) };
  });
  for (const { path, text } of plan) if (text !== null) writeFileSync(path, text);
  return plan.map(({ p, text }) => `${p.file}: ${text === null ? 'already patched' : 'patched'}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    // The aedes this package resolves (hoisted or not); or the one in PROJECT_DIR's node_modules.
    const aedesDir = process.argv[2] ? join(process.argv[2], 'node_modules', 'aedes') : dirname(fileURLToPath(import.meta.resolve('aedes')));
    const version = JSON.parse(readFileSync(join(aedesDir, 'package.json'), 'utf8')).version;
    for (const line of patchAedes(aedesDir)) process.stdout.write(`patch-aedes: aedes ${version} ${line}\n`);
  } catch (err) {
    process.stderr.write(`patch-aedes: FAILED: ${err.message}\n`);
    process.exit(1);
  }
}
