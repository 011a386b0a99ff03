export { revokeDevices, revokeToken, restoreDevice, type RevokeResult } from './revoke.js';
export { issueAccessToken } from './token.js';
export { checkRefreshCredential, rotateRefreshCredential, reportRefreshReplay, type Rotated } from './refresh.js';
