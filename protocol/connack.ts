/** MQTT 3.1.1 CONNACK return codes the broker answers and the device client acts on. */
export const CONNACK = {
  /** A client id the broker will not take (a claim for an id that is not a valid device id). */
  IDENTIFIER_REJECTED: 2,
  /** The node is at its connection cap, or cannot check now: try again later (or another node). */
  SERVER_UNAVAILABLE: 3,
  /** The credential itself is invalid: a device does not present it again. */
  BAD_USERNAME_OR_PASSWORD: 4,
  /** A valid credential that is not allowed (revoked, throttled...). */
  NOT_AUTHORIZED: 5,
} as const;
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK];
