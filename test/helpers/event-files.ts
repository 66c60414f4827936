/**
 * Building and fingerprinting file event store directories by hand, for
 * the tests of its open, its scan and `statelog verify`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { encodeLine } from "../../src/file/events/format.js";

/** Every file of `directory` with its bytes and modification time: what a read-only check must leave as it is. */
export function filesOf(directory: string): Record<string, { bytes: string; mtimeMs: number }> {
  const files: Record<string, { bytes: string; mtimeMs: number }> = {};
  for (const name of readdirSync(directory).sort()) {
    const file = join(directory, name);
    files[name] = { bytes: readFileSync(file).toString("base64"), mtimeMs: statSync(file).mtimeMs };
  }
  return files;
}

/**
 * A line of a segment as the store writes it: event `e<g>` of type `t`
 * with data `{ g }` at `position` of `stream` (`batch`: the length of the
 * append it starts).
 */
export const eventLine = (
  g: number,
  stream: string,
  position: number,
  batch?: number,
  timestampMs = 1_700_000_000_000,
) =>
  encodeLine(
    {
      id: `e${g}`,
      type: "t",
      data: { g },
      timestamp: new Date(timestampMs),
      streamId: stream,
      position,
      globalPosition: g,
    },
    JSON.stringify({ g }),
    undefined,
    batch,
  );
