/**
 * The size limit of a NATS object must be one the connected server can
 * always carry: a value of the limit plus the largest envelope and headers
 * statelog adds must fit the server's `max_payload` (from the INFO it sent
 * on connect). Without an explicit limit, the object takes the largest that
 * fits (at most statelog's 1 MiB); an explicit limit the server cannot carry
 * is refused when the object opens, so an oversized value is always a
 * `TooLargeError` from validation, never a server refusal halfway through
 * a save.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { ConfigurationError } from "../index.js";

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
      `Raise max_payload on the server (e.g. \`max_payload: 2MB\` in nats-server.conf), ` +
      `lower ${option} to at most ${Math.max(0, max - overhead)}, or leave ${option} out: it then follows the server`,
  );
}

/**
 * The size limit in effect: `given` when set (checked against the server),
 * otherwise the server's `max_payload` minus `overhead`, at most `cap`.
 * @throws ConfigurationError when `given` does not fit, or when the server's
 *   `max_payload` leaves no room at all next to the envelope
 */
export function valueLimitFor(
  nc: NatsConnection,
  given: number | undefined,
  cap: number,
  overhead: number,
  what: string,
): number {
  if (given !== undefined) {
    requirePayloadFits(nc, given, overhead, "maxValueBytes", what);
    return given;
  }
  const room = serverMaxPayload(nc) - overhead;
  if (room < 1) {
    throw new ConfigurationError(
      `${what}: the NATS server's max_payload is ${serverMaxPayload(nc)} bytes, which leaves no room for a value ` +
        `next to the ${overhead} bytes of envelope and headers: raise max_payload on the server`,
    );
  }
  return Math.min(cap, room);
}

/**
 * The size limit in effect once the bucket (or stream) is known: its own
 * largest message (`max_msg_size`, set with `nats kv add --max-value-size`
 * or `Kvm.create({ maxValueSize })`; 0 or less is none) bounds a value
 * with its envelope as `max_payload` does. A limit that followed the
 * server is lowered to fit it; a `maxValueBytes` given that does not fit
 * is refused.
 * @param limit the limit in effect so far (see {@link valueLimitFor})
 * @param given whether `maxValueBytes` was given
 * @throws ConfigurationError
 */
export function bucketValueLimit(
  limit: number,
  given: boolean,
  maxMsgSize: number | undefined,
  overhead: number,
  what: string,
  kind: "bucket" | "stream" = "bucket",
): number {
  if (maxMsgSize === undefined || !(maxMsgSize > 0) || limit + overhead <= maxMsgSize) return limit;
  const room = maxMsgSize - overhead;
  if (given || room < 1) {
    throw new ConfigurationError(
      `${what}: its largest message (max_msg_size) is ${maxMsgSize} bytes, which cannot carry a value of ` +
        `${given ? `maxValueBytes ${limit}` : "any size"} with up to ${overhead} bytes of envelope and headers: ` +
        (room < 1
          ? `raise the ${kind}'s max_msg_size`
          : `lower maxValueBytes to at most ${room}, leave it out (it then follows the ${kind}), or raise the ${kind}'s max_msg_size`),
    );
  }
  return room;
}
