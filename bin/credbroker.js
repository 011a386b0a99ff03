#!/usr/bin/env node
// The `credbroker` command (package.json "bin"): runs the compiled CLI in dist/. In a
// checkout where it has not been built yet (`npx credbroker` right after `npm ci`),
// it compiles it first instead of failing with "credbroker: not found".
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = new URL('../dist/cli/main.js', import.meta.url);

if (!existsSync(fileURLToPath(cli))) {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(`credbroker: not built yet, and the build tools are not installed: run "npm ci && npm run build" in ${root} (or "npm start", which does both)\n`);
    process.exit(2);
  }
  process.stderr.write('credbroker: first run in this checkout: compiling TypeScript into dist/ (npm run build)...\n');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    process.stderr.write('credbroker: the build failed (see above): fix it, then run "npm run build"\n');
    process.exit(2);
  }
}

const { run } = await import(cli.href);
run();
