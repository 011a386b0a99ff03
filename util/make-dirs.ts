import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p` that always ends. Node 20's `mkdirSync(path, { recursive: true })` loops
 * forever at 100 % CPU where mkdir fails with ENOENT although the parent exists
 * (`/proc/zz`): here each level is made once, and that failure is thrown.
 */
export function makeDirs(dir: string, mode = 0o700): void {
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    makeDirs(parent, mode);
    mkdirSync(dir, { mode }); // once more, now that the parent exists: a second ENOENT is thrown
  }
}
