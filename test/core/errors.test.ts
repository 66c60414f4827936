import { describe, expect, it } from "vitest";
import { ErrorCode, isPeerMissingError, isStatelogError, PeerMissingError } from "../../src/index.js";

describe("PeerMissingError", () => {
  it("names the module, the package and the exact install line", () => {
    const error = new PeerMissingError("statelog/kafka", ["@confluentinc/kafka-javascript"]);
    expect(error.message).toBe(
      'statelog/kafka needs the package "@confluentinc/kafka-javascript", an optional peer dependency of statelog, ' +
        "and it is not installed: run `npm install @confluentinc/kafka-javascript`",
    );
    expect(error).toMatchObject({
      name: "PeerMissingError",
      code: ErrorCode.PeerMissing,
      module: "statelog/kafka",
      packages: ["@confluentinc/kafka-javascript"],
      install: "npm install @confluentinc/kafka-javascript",
    });
    expect(isPeerMissingError(error)).toBe(true);
    expect(isStatelogError(error, "STATELOG_PEER_MISSING")).toBe(true);
    expect(isPeerMissingError(new Error("x"))).toBe(false);
  });

  it("adds the purpose, a dev install, the extra hint and why loading failed, keeping the cause", () => {
    const cause = new Error("Cannot find package 'a'");
    const error = new PeerMissingError("statelog/testing", ["a", "b"], {
      purpose: "for its tests",
      saveDev: true,
      hint: "both in the same major version",
      cause,
    });
    expect(error.message).toBe(
      'statelog/testing needs the packages "a", "b" for its tests, optional peer dependencies of statelog, ' +
        "and they are not installed: run `npm install --save-dev a b` (both in the same major version)" +
        " — they could not be loaded: Cannot find package 'a'",
    );
    expect(error.install).toBe("npm install --save-dev a b");
    expect(error.cause).toBe(cause);
  });
});
