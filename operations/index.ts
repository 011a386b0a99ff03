export { revokeDevices, revokeToken, restoreDevice, type RevokeResult } from './revoke.js';
export { issueAccessToken } from './token.js';
export { checkTokenStatus } from './check-token.js';
export { deviceSummary, type DeviceSummary } from './show.js';
export { initRegistry, type InitOptions, type InitResult } from './init.js';
export { setProfile, DEFAULT_PROFILE_TTL_MS, type ProfileChange } from './profile.js';
export { checkRefreshCredential, reportRefreshReplay, rotateRefreshCredential, type Rotated } from './refresh.js';
export { reissueCredentials } from './reissue.js';
export { pruneRegistry, pruneAudit, RENEWAL_AUDIT_ACTIONS, type Retention, type Pruned } from './retention.js';
export { deleteDevices, removeSimulationDevices, TOKEN_GRACE_MS, type DeleteResult } from './delete-devices.js';
export { deleteProfile } from './delete-profile.js';
export {
  createClaim, listClaims, showClaim, claimSummary, revokeClaim, extendClaim, removeSimulationClaim, authenticateClaim, provisionByClaim,
  DEFAULT_CLAIM_MAX_DEVICES, DEFAULT_CLAIM_TTL_MS, type CreateClaimInput, type ClaimSummary, type ClaimState, type ClaimRequest,
} from './claim.js';
export { issueGrant, revokeGrant, MAX_GRANT_REASON, type GrantRequest, type IssuedGrant } from './grant.js';
export {
  addOperator, resetOperatorPassword, issueOperatorToken, listOperators, removeOperator, checkOperatorPassword, checkOperatorToken,
  DEFAULT_OPERATOR_TOKEN_TTL_MS, type OperatorSummary,
} from './operators.js';
