export { Keyring, rotateKeys, type VerifyKey, type SigningKey, type Rotation, type RotateOptions } from './keyring.js';
export { mintAccessToken, mintToken, checkTtl, type MintedToken, type MintRequest } from './mint.js';
export { verifyAccessToken, registryVerifyOptions, type VerifyOptions, type VerifiedToken } from './verify.js';
export type { AccessTokenClaims, AclClaim } from './claims.js';
export {
  newRefreshCredential, parseRefreshCredential, hashRefreshCredential, looksLikeRefreshCredential,
  REFRESH_PREFIX, type RefreshCredential,
} from './refresh-credential.js';
export {
  newClaimCredential, parseClaimCredential, hashClaimCredential, looksLikeClaimCredential,
  CLAIM_CREDENTIAL_PREFIX, type ClaimCredential,
} from './claim-credential.js';
