export { openIssuer, type Issuer } from './issuer.js';
export { mintCredentialSet, provisionedRecord, type DeviceCredentials, type CredentialSet, type IssueOptions } from './credentials.js';
export {
  writeCredentialsFile, readCredentialsFile, credentialsFilePath, credentialsFileJti,
  writePendingCredentialsFile, listCredentialsDir, type CredentialsDirListing,
} from './credentials-file.js';
export { readBatchFile, parseCsv, parseJsonLines, type BatchRow } from './batch-file.js';
export { provisionDevices, type ProvisionOptions, type ProvisionResult } from './provision.js';
export { parseBrokerUrl, DEFAULT_BROKER_URL } from './broker-url.js';
