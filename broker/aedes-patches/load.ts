import { readFileSync, realpathSync } from 'node:fs';
import { register } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as AedesModule from 'aedes';
import { AEDES_VERSION, PATCHES, type AedesPatch, type Edit } from './patches.js';

/**
 * aedes is an ES module: its source is changed by a module `load` hook (run by
 * Node on its loader thread), for the patched files' URLs only. The hook is a
 * data: URL so that it needs no file of its own next to the build.
 */
const HOOK = `
let files = new Map()
export async function initialize (data) { files = new Map(Object.entries(data)) }
export async function load (url, context, nextLoad) {
  const loaded = await nextLoad(url, context)
  const edits = files.get(url)
  if (!edits) return loaded
  let text = typeof loaded.source === 'string' ? loaded.source : new TextDecoder().decode(loaded.source)
  for (const [from, to] of edits) text = text.replace(from, () => to)
  return { ...loaded, source: text }
}
`;

export interface PatchPlan {
  /** File URL → its edits, in order; null when aedes is not the one the patches were written for. */
  readonly files: Record<string, [string, string][]> | null;
  /** Why the patches are not applied (one line); null when they are. */
  readonly unpatched: string | null;
}

/**
 * Checks every patch against the aedes in `aedesDir` without changing anything:
 * its version must be AEDES_VERSION and each edit's text must occur exactly once
 * in the text the previous edits leave. Any mismatch: nothing is applied.
 */
export function planPatches(aedesDir: string, patches: readonly AedesPatch[] = PATCHES): PatchPlan {
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(join(aedesDir, 'package.json'), 'utf8')) as { version?: unknown }).version;
  } catch (err) {
    return { files: null, unpatched: `aedes' package.json cannot be read (${(err as Error).message})` };
  }
  if (version !== AEDES_VERSION) return { files: null, unpatched: `aedes is ${String(version)}, the patches are for ${AEDES_VERSION}` };
  const texts = new Map<string, string>();
  const files: Record<string, [string, string][]> = {};
  for (const p of patches) {
    const path = join(aedesDir, p.file);
    let text = texts.get(path) ?? readFileSync(path, 'utf8');
    for (const e of p.edits) {
      const at = text.indexOf(e.from);
      if (at === -1 || text.indexOf(e.from, at + 1) !== -1) return { files: null, unpatched: `${p.file} does not hold the text patch ${p.name} replaces` };
      text = apply(text, e);
    }
    texts.set(path, text);
    (files[pathToFileURL(path).href] ??= []).push(...p.edits.map((e): [string, string] => [e.from, e.to]));
  }
  return { files, unpatched: null };
}

function apply(text: string, e: Edit): string {
  return text.replace(e.from, () => e.to);
}

let loading: { readonly patched: boolean; readonly aedes: Promise<typeof AedesModule> } | null = null;

/**
 * aedes, with PATCHES applied. Must be the first import of aedes in the
 * process (the broker imports it through here only); when its version or text
 * is not the expected one, `warn` gets one line and aedes runs unpatched.
 * `patched: false` (the bench only, through `weaken.unpatchedAedes`) loads
 * aedes as published, to measure what the patches change; a module loads once
 * per process, so asking for the other kind later is an error, not a silent mix.
 */
export function loadAedes(warn: (line: string) => void, { patched = true }: { patched?: boolean } = {}): Promise<typeof AedesModule> {
  if (loading && loading.patched !== patched) return Promise.reject(new Error(`aedes is already loaded ${loading.patched ? 'patched' : 'unpatched'} in this process`));
  loading ??= {
    patched,
    aedes: (async () => {
      if (!patched) return import('aedes');
      // Symlinks resolved: module URLs are the real paths.
      const dir = realpathSync(dirname(fileURLToPath(import.meta.resolve('aedes'))));
      const plan = planPatches(dir);
      if (plan.files) register(`data:text/javascript,${encodeURIComponent(HOOK)}`, { data: plan.files });
      else warn(`aedes runs unpatched: ${plan.unpatched}; its conformance fixes and CONNECT speedups are off`);
      return import('aedes');
    })(),
  };
  return loading.aedes;
}
