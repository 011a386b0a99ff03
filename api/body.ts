import type { IncomingMessage } from 'node:http';
import { ApiError } from '../errors/index.js';

/** The largest request body read: every API body is a few fields. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads and parses a JSON request body, refusing more than MAX_BODY_BYTES
 * (stops reading there), a content type other than JSON, and bad JSON, each
 * with one line. An empty body is `undefined`.
 * @throws ApiError `ERR_API_TOO_LARGE` | `ERR_API_BODY`
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError('ERR_API_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError('ERR_API_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new ApiError('ERR_API_BODY', 'the request body must be JSON (Content-Type: application/json)');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new ApiError('ERR_API_BODY', `the request body is not valid JSON: ${(err as Error).message.split('\n')[0]!.slice(0, 120)}`);
  }
}
