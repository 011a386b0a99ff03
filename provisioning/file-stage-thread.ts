// The thread of a large batch's file stage (file-stage.ts): runs each job as it comes, in order.
import { parentPort } from 'node:worker_threads';
import { runFileJob, type FileJob, type JobError } from './file-stage.js';

parentPort!.on('message', (message: string) => {
  try {
    parentPort!.postMessage({ paths: runFileJob(JSON.parse(message) as FileJob) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const error: JobError = { message: e.message, ...(e.code === undefined ? {} : { code: e.code }) };
    parentPort!.postMessage({ error });
  }
});
