/**
 * What the NATS event store and the KV change feed share to tell a stream
 * that lost messages, or was deleted and created again, from one that only
 * looks so for a moment.
 */

/** What the server holds at the sequence of a message read before. */
export const LastMessage = { Same: "same", Other: "other", Unknown: "unknown" } as const;
export type LastMessage = (typeof LastMessage)[keyof typeof LastMessage];

/**
 * How often, and how far apart, a stream info that reports a last sequence
 * below what was read is asked again before the stream is taken to have
 * lost its messages: a newly elected stream leader can answer before it
 * applied everything its predecessor committed.
 */
export const LOW_LAST_SEQUENCE_CHECKS = 4;
export const LOW_LAST_SEQUENCE_PAUSE_MS = 500;
