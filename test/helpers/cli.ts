import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI (`npm test` builds first). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Added to a clean environment (CREDBROKER_* variables of the caller are dropped). */
  readonly env?: Record<string, string | undefined>;
  /** Written to the child's stdin (which is then closed). */
  readonly input?: string | Buffer;
  readonly cwd?: string;
}

/**
 * The caller's environment without CREDBROKER_* (tests are hermetic) and without the
 * test runner's loader hooks (NODE_OPTIONS, TAP_*, _TAPJS_*): the CLI runs as a user runs it.
 */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('CREDBROKER_') || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('TS_NODE') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `node dist/cli/main.js ...args` (for tests that need the process, e.g. to kill it). */
export function spawnCli(args: readonly string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [CLI_PATH, ...args], { cwd: opts.cwd, env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs the CLI to completion and collects its exit code and output. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({
      code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
    }));
    child.stdin!.on('error', () => {}); // the CLI may exit before reading its input
    child.stdin!.end(opts.input ?? '');
  });
}

/** Lines of a text, without the trailing empty one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l, k, all) => !(l === '' && k === all.length - 1));
}

/** Decodes a JWT's payload (no verification: for reading jti/sub in tests). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
