/**
 * How tests start a TypeScript fixture as a child process cheaply: it is
 * bundled once with esbuild, so that each child starts as plain `node`
 * (~0.1 s) instead of `node --import tsx` (~0.4 s) — crash tests start
 * hundreds. Without esbuild it falls back to tsx.
 */
import path from "node:path";

/** The `node` arguments that run `fixture`, bundling it into `outDir` when esbuild is there. */
export async function childCommand(fixture: string, outDir: string): Promise<string[]> {
  try {
    const esbuild = (await import("esbuild")) as { build(options: Record<string, unknown>): Promise<unknown> };
    const out = path.join(outDir, `${path.basename(fixture, ".ts")}.mjs`);
    await esbuild.build({
      entryPoints: [fixture],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: out,
      external: ["fs-ext"], // a native addon: loaded from node_modules (NODE_PATH)
      logLevel: "silent",
    });
    return [out];
  } catch {
    return ["--import", "tsx", fixture];
  }
}
