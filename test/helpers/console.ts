import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Builds the operator console into dist/console/ (scripts/build-console.mjs), as
 * `npm run build` does: a test that serves it must not depend on an earlier build.
 */
export function buildConsole(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, ['scripts/build-console.mjs'], { cwd: root, stdio: 'inherit', timeout: 120_000 });
}
