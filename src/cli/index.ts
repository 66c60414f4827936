#!/usr/bin/env node
/** The `statelog` command's entry point; see ./program.ts. */
import { formatError } from "./errors.js";
import { buildProgram } from "./program.js";

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  // Typed statelog errors (raw system errors are turned into typed ones): `statelog: <message> [<code>]`.
  console.error(`statelog: ${formatError(error)}`);
  process.exitCode = 1;
}
