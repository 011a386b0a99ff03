import { renameSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { removePendingFile, writePendingCredentialsFile } from './credentials-file.js';
import type { DeviceCredentials } from './credentials.js';

/** One step of a batch's credentials files (see provisionDevices for their order). */
export type FileJob =
  | { readonly op: 'write'; readonly dir: string; readonly files: readonly DeviceCredentials[] }
  | { readonly op: 'rename'; readonly moves: readonly (readonly [from: string, to: string])[] }
  | { readonly op: 'remove'; readonly paths: readonly string[] };

/**
 * Does a job here and now: `write` gives the pending files' paths, in the order of
 * `files`; a write that fails (a full disk) first removes the files it wrote.
 */
export function runFileJob(job: FileJob): string[] {
  switch (job.op) {
    case 'write': {
      const paths: string[] = [];
      try {
        for (const f of job.files) paths.push(writePendingCredentialsFile(job.dir, f));
      } catch (err) {
        for (const p of paths) removePendingFile(p);
        throw err;
      }
      return paths;
    }
    case 'rename': for (const [from, to] of job.moves) renameSync(from, to); return [];
    case 'remove': for (const p of job.paths) removePendingFile(p); return [];
  }
}

/** Where a batch's file jobs run: each settles in the order given. */
export interface FileStage {
  run(job: FileJob): Promise<string[]>;
  /** Waits for the jobs given, then lets go of the thread (if any). */
  close(): Promise<void>;
}

/** A failed job's error as it crosses threads: an fs error keeps its message and code. */
export interface JobError { readonly message: string; readonly code?: string }

/**
 * Batches of more devices than this write their files on a thread of their own,
 * while the main thread stores the registry rows; a smaller one does not pay the
 * thread's start (about 20 ms).
 */
const THREAD_MIN_DEVICES = 2000;

/**
 * The file stage for a batch of `devices`. On a thread, the open, write, close
 * and rename of each file leave the main thread (a quarter of its CPU for a
 * 10,000-device batch on tmpfs). Not libuv's pool: the signing jobs queued there would hold the files
 * up behind a whole chunk of signatures.
 */
export function fileStage(devices: number): FileStage {
  return devices > THREAD_MIN_DEVICES ? new ThreadStage() : inlineStage;
}

const inlineStage: FileStage = {
  run: (job) => {
    try {
      return Promise.resolve(runFileJob(job));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  },
  close: () => Promise.resolve(),
};

/**
 * The thread's module, compiled beside this one. Run from source (the tests, under
 * tsx, whose loader a worker thread does not inherit), it is the one in dist/.
 */
const THREAD = import.meta.url.endsWith('.ts')
  ? new URL('../dist/provisioning/file-stage-thread.js', import.meta.url)
  : new URL('./file-stage-thread.js', import.meta.url);

class ThreadStage implements FileStage {
  private readonly worker = new Worker(THREAD);
  private readonly waiting: Array<{ resolve: (paths: string[]) => void; reject: (err: Error) => void }> = [];

  constructor() {
    this.worker.on('message', (m: { paths: string[] } | { error: JobError }) => {
      const w = this.waiting.shift()!;
      if ('paths' in m) w.resolve(m.paths);
      else w.reject(Object.assign(new Error(m.error.message), m.error.code === undefined ? {} : { code: m.error.code }));
    });
    // The thread itself failed or ended (not a job): every job still waiting fails with it.
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the credentials file thread ended')));
  }

  private fail(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  run(job: FileJob): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      // As one string: the structured clone copies a string at once, a thousand objects field by field.
      this.worker.postMessage(JSON.stringify(job));
    });
  }

  async close(): Promise<void> {
    await this.run({ op: 'remove', paths: [] }).catch(() => {}); // the jobs before it are done
    await this.worker.terminate();
  }
}
