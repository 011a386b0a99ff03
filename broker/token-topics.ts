/**
 * The renewal topics of one device (SPEC "Renewal"). Every session may use its
 * own; a refresh-credential session may use nothing else.
 */
export const tokenTopics = (deviceId: string) => ({
  renew: `$devices/${deviceId}/token/renew`,
  accepted: `$devices/${deviceId}/token/accepted`,
  rejected: `$devices/${deviceId}/token/rejected`,
  filter: `$devices/${deviceId}/token/+`,
});

const RENEW = /^\$devices\/([^/]*)\/token\/renew$/;

/** The device id named by a renewal topic, or null when `topic` is not one. */
export function renewTopicDevice(topic: string): string | null {
  return topic.startsWith('$devices/') ? (RENEW.exec(topic)?.[1] ?? null) : null;
}
