import type { Grant } from './types.js';

/** `revoked` wins over `expired`: an operator asks whether it was killed or ran out. */
export function grantStatus(g: Pick<Grant, 'revokedAt' | 'expiresAt'>, now: number): 'active' | 'expired' | 'revoked' {
  if (g.revokedAt !== null) return 'revoked';
  return g.expiresAt > now ? 'active' : 'expired';
}
