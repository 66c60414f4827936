#!/usr/bin/env node
/** The `statelog` command's entry point; see ./program.ts. */
import { CommanderError } from "commander";
import { ExitCode, errorJson, exitCodeOf, formatError } from "./errors.js";
import { buildProgram } from "./program.js";

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed the usage error (or the help, or the version) already.
    process.exitCode = error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  } else {
    // Typed statelog errors (raw system errors are turned into typed ones): `statelog: <message> [<code>]`.
    console.error(process.argv.includes("--json") ? errorJson(error) : `statelog: ${formatError(error)}`);
    process.exitCode = exitCodeOf(error);
  }
}
