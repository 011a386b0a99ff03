export { revokeDevices, revokeToken, restoreDevice, type RevokeResult } from './revoke.js';
export { issueAccessToken } from './token.js';
