/** The exit code of each kind of failure (docs/cli.md, "Exit codes"). */
import { describe, expect, it } from "vitest";
import { ExitCode, errorJson, exitCodeOf, interruptedError } from "../../src/cli/errors.js";
import { LockedError } from "../../src/file/index.js";
import {
  AbortError,
  ConfigurationError,
  CorruptionError,
  FeedBehindError,
  InvalidNameError,
  NotFoundError,
  PartialWriteError,
  PeerMissingError,
  UnavailableError,
  UnsupportedError,
  ValidationError,
} from "../../src/index.js";
import { KafkaReadError, KafkaTopicError } from "../../src/kafka/index.js";

describe("exitCodeOf", () => {
  it("maps each outcome to its code", () => {
    const cases: [unknown, ExitCode][] = [
      [new ConfigurationError("x"), ExitCode.Usage],
      [new ValidationError("f", "x"), ExitCode.Usage],
      [new InvalidNameError("namespace", "a/b", "x"), ExitCode.Usage],
      [new NotFoundError("namespace", "n"), ExitCode.NotFound],
      [new KafkaTopicError("t", "does not exist"), ExitCode.NotFound],
      [new UnsupportedError("x"), ExitCode.Unsupported],
      [new PeerMissingError("statelog/nats", ["@nats-io/kv"]), ExitCode.PeerMissing],
      [new UnavailableError("x"), ExitCode.Unavailable],
      [new KafkaReadError("t", "x"), ExitCode.Unavailable],
      [new LockedError("/d"), ExitCode.Unavailable],
      [new CorruptionError("f", 1, "x"), ExitCode.Damaged],
      [new FeedBehindError("n", 3, "x"), ExitCode.FeedBehind],
      [new AbortError(), ExitCode.Interrupted],
      [new PartialWriteError({ operation: "save", targets: "changes", written: [0], failed: [] }), ExitCode.Failure],
      [new Error("plain"), ExitCode.Failure],
      [Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT", path: "/x" }), ExitCode.NotFound],
      [Object.assign(new Error("EACCES"), { code: "EACCES", path: "/x" }), ExitCode.Usage],
    ];
    for (const [error, code] of cases) expect(exitCodeOf(error), String(error)).toBe(code);
  });

  it("prints an error as JSON with its code, message and exit code", () => {
    expect(JSON.parse(errorJson(new NotFoundError("namespace", "n")))).toEqual({
      error: { code: "STATELOG_NOT_FOUND", message: 'namespace "n" not found', exitCode: 3 },
    });
    expect(JSON.parse(errorJson(new Error("boom")))).toEqual({ error: { message: "boom", exitCode: 1 } });
  });

  it("reports a failure of interrupted work as aborted (exit 130), keeping what a partial write says was written", () => {
    const partial = new PartialWriteError({
      operation: "save",
      targets: "changes",
      written: [0, 1],
      uncertain: [2],
      failed: [{ index: 3, error: new AbortError() }],
    });
    const aborted = interruptedError(partial, 'namespace "a": 10 change(s) copied', "copying again is safe");
    expect(exitCodeOf(aborted)).toBe(ExitCode.Interrupted);
    expect(aborted.cause).toBe(partial);
    expect(aborted.message).toBe(
      'operation aborted (interrupted): namespace "a": 10 change(s) copied, and of the save under way 2 of 4 changes were written, 1 uncertain (sent, unanswered), 1 not written; copying again is safe',
    );
    expect(interruptedError(new AbortError(), "x").message).toBe("operation aborted (interrupted): x");
  });
});
