/**
 * The page's static files (HTML, script modules, style sheet), read from
 * `./assets/` next to this module: `src/inspector/assets/` in the
 * sources, `dist/inspector/assets/` in the package (the build copies the
 * folder). None of them holds data: the script fetches it from the API.
 */
import { readFile } from "node:fs/promises";

/** A static file and its content type. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/** URL path → file name under `./assets/`, and its content type. */
const FILES: Readonly<Record<string, readonly [string, string]>> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/assets/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/assets/dom.js": ["dom.js", "text/javascript; charset=utf-8"],
  "/assets/state.js": ["state.js", "text/javascript; charset=utf-8"],
  "/assets/namespaces.js": ["namespaces.js", "text/javascript; charset=utf-8"],
  "/assets/streams.js": ["streams.js", "text/javascript; charset=utf-8"],
  "/assets/projections.js": ["projections.js", "text/javascript; charset=utf-8"],
  "/assets/style.css": ["style.css", "text/css; charset=utf-8"],
};

/** Reads the static files (once per inspector). */
export async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const entries = await Promise.all(
    Object.entries(FILES).map(
      async ([path, [file, type]]) =>
        [path, { type, body: await readFile(new URL(`./assets/${file}`, import.meta.url)) }] as const,
    ),
  );
  return new Map(entries);
}
