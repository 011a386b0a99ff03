// scripts/patch-aedes.mjs (the `postinstall` patches to aedes) on a copy of the
// texts it replaces: applied once, left alone the second time, and refused
// loudly, leaving the file as it was, when aedes' text is not the expected one.
// What the patched aedes does is covered by the broker suites (persistent
// sessions' queues: hostile-offline-queue, sessions).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../scripts/patch-aedes.mjs', import.meta.url));
interface Patch { readonly file: string; readonly from: string; readonly to: string }
const { PATCHES } = (await import(new URL('../scripts/patch-aedes.mjs', import.meta.url).href)) as { PATCHES: readonly Patch[] };

const HEAD = "import x from 'y'\n\nfunction before () {}\n\n";
const TAIL = '\nfunction after () {}\n';

/** A project folder whose node_modules/aedes holds each patched file as `HEAD + text(patch) + TAIL`. */
function project(t: { testdir(): string }, text: (p: Patch) => string): { dir: string; read: (p: Patch) => string } {
  const dir = t.testdir();
  const aedes = join(dir, 'node_modules', 'aedes');
  mkdirSync(aedes, { recursive: true });
  writeFileSync(join(aedes, 'package.json'), JSON.stringify({ name: 'aedes', version: '1.2.0' }));
  for (const p of PATCHES) {
    mkdirSync(dirname(join(aedes, p.file)), { recursive: true });
    writeFileSync(join(aedes, p.file), HEAD + text(p) + TAIL);
  }
  return { dir, read: (p) => readFileSync(join(aedes, p.file), 'utf8') };
}

function run(dir: string): { status: number; out: string } {
  try {
    return { status: 0, out: execFileSync(process.execPath, [script, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { status: number; stderr: string };
    return { status: e.status, out: e.stderr };
  }
}

t.test('each patch replaces exactly its text, and a second run changes nothing', async (t) => {
  t.ok(PATCHES.length >= 1);
  const { dir, read } = project(t, (p) => p.from);
  const first = run(dir);
  t.equal(first.status, 0, first.out);
  for (const p of PATCHES) {
    t.equal(read(p), HEAD + p.to + TAIL, `${p.file} patched, the rest of the file kept`);
    t.match(first.out, `${p.file}: patched`);
  }
  const second = run(dir);
  t.equal(second.status, 0, second.out);
  for (const p of PATCHES) {
    t.equal(read(p), HEAD + p.to + TAIL, `${p.file} unchanged by a second run`);
    t.match(second.out, `${p.file}: already patched`);
  }
});

t.test('a changed aedes fails the install with one clear line and is not touched', async (t) => {
  const changed = (p: Patch) => p.from.replace('\n', '\n  // upstream moved this\n');
  const { dir, read } = project(t, changed);
  const r = run(dir);
  t.equal(r.status, 1);
  t.match(r.out, /patch-aedes: FAILED: .* aedes changed; review scripts\/patch-aedes\.mjs/);
  t.equal(r.out.trim().split('\n').length, 1, 'one line');
  for (const p of PATCHES) t.equal(read(p), HEAD + changed(p) + TAIL, `${p.file} left as it was`);
});

t.test('no aedes installed: a clear failure, not a stack trace', async (t) => {
  const r = run(t.testdir());
  t.equal(r.status, 1);
  t.match(r.out, /patch-aedes: FAILED: /);
  t.notMatch(r.out, /\n\s+at /);
});
