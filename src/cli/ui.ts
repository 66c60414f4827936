/**
 * `statelog ui <target…>`: serves the web inspector (docs/inspector.md) over
 * the targets until Ctrl-C or SIGTERM. Read-only unless `--allow-writes`.
 */
import type { Command } from "commander";
import { Inspector, type InspectorTarget } from "../inspector/index.js";
import { interruptible, nonNegativeInt, withJson } from "./command.js";
import { keyHistory } from "./history.js";
import { type OpenedTarget, openTarget } from "./targets.js";

interface UiFlags {
  host: string;
  port: number;
  allowWrites: boolean;
  json?: boolean;
}

/** The inspector's view of an opened target (its history comes from the CLI's own reader). */
function inspectorTarget(target: OpenedTarget): InspectorTarget {
  return {
    name: target.spec.display,
    store: target.store,
    eventStore: target.eventStore,
    readModels: target.readModels,
    ...(target.store
      ? {
          history: (namespace: string, entityType: string, entityId: string, signal: AbortSignal) =>
            keyHistory(target, namespace, entityType, entityId, signal),
        }
      : {}),
  };
}

export function addUiCommand(program: Command): void {
  withJson(
    program
      .command("ui")
      .description("serve a local web page over the targets (read-only unless --allow-writes)")
      .argument("<targets...>", "store, event-store (+events) or read-model (+models) URLs")
      .option("--host <address>", "the address to listen on", "127.0.0.1")
      .option("--port <port>", "the TCP port (0: a free one)", nonNegativeInt, 0)
      .option("--allow-writes", "allow compact from the page", false),
  ).action(async (urls: string[], flags: UiFlags) => {
    const opened: OpenedTarget[] = [];
    const run = interruptible();
    try {
      for (const url of urls) opened.push(await openTarget(url));
      // Interrupted while the targets opened: serve nothing, print nothing.
      if (run.signal.aborted) return;
      const inspector = await Inspector.open({
        targets: opened.map(inspectorTarget),
        host: flags.host,
        port: flags.port,
        allowWrites: flags.allowWrites,
      });
      if (flags.json) {
        const { port, token, url } = inspector;
        console.log(JSON.stringify({ url, token, host: flags.host, port, allowWrites: flags.allowWrites }));
      } else {
        console.log(`statelog inspector: ${inspector.url}`);
      }
      if (!run.signal.aborted) {
        await new Promise<void>((resolve) => run.signal.addEventListener("abort", () => resolve(), { once: true }));
      }
      await inspector.close();
    } finally {
      run.dispose();
      // Every target is closed, even after one fails to (the command's own error, if any, is what it reports).
      for (const target of opened.reverse()) await target.close().catch(() => undefined);
    }
  });
}
