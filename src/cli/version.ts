/** The version of the installed statelog package, for `statelog --version`. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigurationError } from "../index.js";

/**
 * The `version` of the nearest `package.json` named `statelog` above
 * `from` (this module's URL by default): the same from `src/cli` (tsx)
 * and from `dist/cli` (the built command).
 * @throws ConfigurationError when there is none
 */
export function packageVersion(from: string | URL = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const manifest = readManifest(join(dir, "package.json"));
    if (manifest?.name === "statelog" && typeof manifest.version === "string") return manifest.version;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new ConfigurationError(
        `cannot tell statelog's version: no package.json of statelog above ${fileURLToPath(from)}`,
      );
    }
    dir = parent;
  }
}

function readManifest(file: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}
