/** Progress of long work: a bar with rate and ETA on a terminal, plain lines elsewhere. */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { startProgress } from "../../src/cli/output.js";

function stream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = "";
  const w = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  Object.assign(w, { isTTY, columns: 200 });
  return { stream: w as unknown as NodeJS.WriteStream, text: () => text };
}

describe("startProgress", () => {
  it("draws a bar with percentage, counts, rate and ETA on a terminal", () => {
    const out = stream(true);
    const p = startProgress("copy ws-1", "changes", { stream: out.stream });
    p.total(200);
    p.update(100);
    p.update(200);
    p.stop();
    expect(out.text()).toMatch(/copy ws-1 \[[^\]]+\] 100% \| 200\/200 changes \| \d+\/s \| ETA \d+s/);
  });

  it("writes plain lines elsewhere: at most one per interval, and the totals at the end", () => {
    const out = stream(false);
    const p = startProgress("dump", "changes", { stream: out.stream, lineIntervalMs: 60_000 });
    p.total(10);
    p.update(5); // the first update prints a line
    p.update(6); // within the interval: none
    p.update(10);
    p.stop();
    const lines = out.text().trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^dump: 5\/10 changes \(\d+\/s ETA \d+s\)$/);
    expect(lines[1]).toMatch(/^dump: 10\/10 changes \(\d+\/s\)$/);
    expect(out.text()).not.toContain("\x1B");
  });

  it("prints the final line once when the last update printed it already", () => {
    const out = stream(false);
    const p = startProgress("dump", "changes", { stream: out.stream, lineIntervalMs: 60_000 });
    p.total(2);
    p.update(2); // printed at once (the first update): the totals
    p.stop();
    expect(out.text().trim().split("\n")).toHaveLength(1);
  });

  it("shows nothing when quiet", () => {
    const out = stream(false);
    const p = startProgress("verify", "bytes", { stream: out.stream, quiet: true });
    p.total(1);
    p.update(1);
    p.stop();
    expect(out.text()).toBe("");
  });
});
