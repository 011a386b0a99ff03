// Makes `npm test`, `npm start`, `npm run bench` and `npm run demo` work on a fresh clone:
// installs dependencies when node_modules is missing, then compiles TypeScript and the operator console.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const run = (cmd) => execSync(cmd, { stdio: 'inherit' });
if (!existsSync('node_modules/.package-lock.json')) run('npm ci --no-audit --no-fund');
run('npx tsc -p tsconfig.json');
run('node scripts/build-console.mjs');
