/** Requests on the broker's own topics (renewal, claim) are small JSON objects: this bounds and parses them. */
export const MAX_REQUEST_BYTES = 1024;

/** The payload as a JSON object, or null when it is too large, not JSON, or not an object. */
export function parseRequestObject(payload: Buffer | string): Record<string, unknown> | null {
  if (payload.length > MAX_REQUEST_BYTES) return null;
  try {
    const obj = JSON.parse(payload.toString()) as unknown;
    return obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A request id: a string of 1–128 characters, or null. */
export function requestIdOf(obj: Record<string, unknown> | null): string | null {
  const id = obj?.requestId;
  return typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : null;
}

/** The requestId of a request that is otherwise invalid, so the client can match the rejection. */
export function salvageRequestId(payload: Buffer | string): string | null {
  return requestIdOf(parseRequestObject(payload));
}
