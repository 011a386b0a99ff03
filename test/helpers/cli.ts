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
  /** Run as this user and group (the test runner must be root to switch). */
  readonly uid?: number;
  readonly gid?: number;
  /** `runCli`: killed, and the run refused with the command named, when it has not exited within this (default 180 s). */
  readonly timeoutMs?: number;
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
  // As another user, through env(1): tap's process-info hook adds NODE_OPTIONS to every child,
  // which would make the CLI write into the runner's .tap folder (not writable for that user).
  const [cmd, argv] = opts.uid === undefined
    ? [process.execPath, [CLI_PATH, ...args]]
    : ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, CLI_PATH, ...args]];
  return spawn(cmd, argv, { cwd: opts.cwd, env: childEnv(opts.env), uid: opts.uid, gid: opts.gid, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs the CLI to completion and collects its exit code and output; one that hangs is killed at `opts.timeoutMs`. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const ms = opts.timeoutMs ?? 180_000;
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      // The command name only: later arguments may be secrets (a token, a database URL with its password).
      reject(new Error(`timed out after ${ms} ms waiting for \`credbroker ${args[0] ?? ''}\` to exit`));
    }, ms);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
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

export interface ServingCli {
  readonly child: ChildProcess;
  /** stderr so far (the "broker ready" line, or the error that stopped it). */
  stderr(): string;
  /** stdout so far. */
  stdout(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `credbroker serve ...args` and resolves once it printed "broker ready", or
 * with the exit code when it stopped first (a refused start).
 */
export function serveCli(args: readonly string[], opts: CliOptions = {}): Promise<ServingCli | CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(['serve', ...args], opts);
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    child.on('error', reject);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString('utf8');
      if (/broker ready/.test(err)) {
        resolve({
          child,
          stderr: () => err,
          stdout: () => out,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => resolve({ code, signal: child.signalCode, stdout: out, stderr: err }));
  });
}
