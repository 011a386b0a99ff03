// Builds the operator console (console/, preact + TSX) into dist/console/: index.html,
// one script (app.js) and one style sheet (app.css), all served by the ops port under
// /console/ (broker/console-assets.ts). No inline script or style, so the page runs
// under `script-src 'self'; style-src 'self'`, and nothing is fetched from off the machine.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'console');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(root, 'console', 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync(join(out, 'app.css'), readFileSync(join(root, 'console', 'style.css')));
writeFileSync(join(out, 'index.html'), readFileSync(join(root, 'console', 'index.html')));
