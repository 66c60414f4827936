#!/usr/bin/env node
/** The `statelog` command's entry point; see ./program.ts. */
import { CommanderError } from "commander";
import { ConfigurationError } from "../index.js";
import { ExitCode, errorJson, exitCodeOf, formatError } from "./errors.js";
import { buildProgram } from "./program.js";

const json = process.argv.includes("--json");
try {
  // With --json, Commander prints no usage error: it is printed below as JSON, as every other error.
  await buildProgram({ quietUsageErrors: json }).parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed the usage error (or the help, or the version) already, unless --json.
    process.exitCode = error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    if (json && error.exitCode !== 0) console.error(errorJson(usageError(error)));
  } else {
    // Typed statelog errors (raw system errors are turned into typed ones): `statelog: <message> [<code>]`.
    console.error(json ? errorJson(error) : `statelog: ${formatError(error)}`);
    process.exitCode = exitCodeOf(error);
  }
}

/** A usage error of Commander's as a typed one (exit code 2): its message without Commander's `error: `. */
function usageError(error: CommanderError): ConfigurationError {
  const message =
    error.code === "commander.help"
      ? "no command given (statelog --help lists them)"
      : error.message.replace(/^error: /, "");
  return new ConfigurationError(message, { cause: error });
}
