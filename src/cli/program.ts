/**
 * The `statelog` command: one tool for every backend (docs/cli.md). Each
 * command takes targets named by URL (`./target-url.ts`):
 *
 *   statelog namespaces <store>                     namespaces with their key counts
 *   statelog dump <store> [namespace...]            the current state as JSON lines (or --format table)
 *   statelog tail <store> <namespace> [-f]          the current state, then live changes
 *   statelog history <store> <ns> <type> <id>       every change of one key the backend still holds
 *   statelog copy|migrate <from> <to> [-n ns...]    from any store to any other, with progress
 *   statelog compact <store> [namespace...]         rewrite to the latest change per key
 *   statelog verify <target>                        checksums, order, index files; exit code 7 on damage
 *   statelog stats <target>                         sizes of a store or an event store
 *   statelog streams|read|subscribe <events> …      event stores
 *   statelog status <models> <projection...>        projections' status
 *   statelog ui <target...>                         the web inspector on 127.0.0.1 (docs/inspector.md)
 *
 * Every failure is a typed statelog error, printed on stderr as
 * `statelog: <message> [<code>]` (or as JSON with `--json`), with an exit
 * code by outcome (`ExitCode` in ./errors.ts). Commands that only read
 * never create a directory, bucket or stream.
 */
import { Command } from "commander";
import { addEventCommands } from "./event-commands.js";
import { addHistoryCommand } from "./history.js";
import { addStatsCommand } from "./stats.js";
import { addStoreCommands } from "./store-commands.js";
import { addUiCommand } from "./ui.js";
import { addVerifyCommand } from "./verify.js";
import { packageVersion } from "./version.js";

/** The package's version; a broken installation must not keep the other commands from running. */
function versionOrUnknown(): string {
  try {
    return packageVersion();
  } catch {
    return "unknown";
  }
}

/** Options of {@link buildProgram}. */
export interface ProgramOptions {
  /**
   * Commander prints nothing for a usage error (an unknown option, a bad
   * option value, a missing argument), nor the help after it: the caller
   * prints the error as JSON (`--json` is among the arguments).
   * @default false
   */
  quietUsageErrors?: boolean;
}

export function buildProgram(options: ProgramOptions = {}): Command {
  // `statelog dump … | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
  const program = new Command()
    .name("statelog")
    .description(
      "Inspect, dump, follow, copy, compact and verify statelog stores, event stores and read models on any backend.\n" +
        "Targets are URLs: file:./dir (or a plain directory), nats://host:4222/bucket, kafka://broker:9092/topic, memory:;\n" +
        "add +events or +models to the scheme for an event store or a read-model store. See docs/cli.md.",
    )
    .version(versionOrUnknown(), "-V, --version", "print the version of statelog")
    .exitOverride()
    .showHelpAfterError();
  // Before the commands are added: each takes its parent's output settings.
  if (options.quietUsageErrors) program.configureOutput({ outputError: () => undefined, writeErr: () => undefined });
  addStoreCommands(program);
  addHistoryCommand(program);
  addVerifyCommand(program);
  addStatsCommand(program);
  addEventCommands(program);
  addUiCommand(program);
  return program;
}
