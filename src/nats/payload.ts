/**
 * The size limit a NATS backend promises must be one the connected server
 * can always carry: a value of the configured limit plus the largest
 * envelope and headers statelog adds must fit the server's `max_payload`
 * (from the INFO it sent on connect). Checked when a store opens, so an
 * oversized change is always a `TooLargeError` from validation, never a
 * server refusal halfway through a save.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { ConfigurationError } from "../core/errors.js";

/** The server's largest message in bytes (payload and headers), or `Infinity` when it did not say. */
export function serverMaxPayload(nc: NatsConnection): number {
  const max = nc.info?.max_payload;
  return typeof max === "number" && max > 0 ? max : Number.POSITIVE_INFINITY;
}

/**
 * Throws unless `limit + overhead` bytes fit the server's `max_payload`.
 * @param limit the configured limit (bytes of JSON)
 * @param overhead the largest envelope and header bytes added to a value of `limit` bytes
 * @param option the option's name, for the message (`maxValueBytes`, …)
 * @param what the object being opened, for the message
 * @throws ConfigurationError naming both numbers and both fixes
 */
export function requirePayloadFits(
  nc: NatsConnection,
  limit: number,
  overhead: number,
  option: string,
  what: string,
): void {
  const max = serverMaxPayload(nc);
  if (limit + overhead <= max) return;
  throw new ConfigurationError(
    `${what}: ${option} is ${limit} bytes, so a message can be up to ${limit + overhead} bytes ` +
      `(with up to ${overhead} bytes of envelope and headers), but the NATS server's max_payload is ${max} bytes. ` +
      `Raise max_payload on the server (e.g. \`max_payload: 2MB\` in nats-server.conf) ` +
      `or lower ${option} to at most ${Math.max(0, max - overhead)}`,
  );
}
