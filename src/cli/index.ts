#!/usr/bin/env node
/** The `statelog` command's entry point; see ./program.ts. */
import { isStatelogError, messageOf } from "../core/errors.js";
import { buildProgram } from "./program.js";

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const code = isStatelogError(error) ? ` [${error.code}]` : "";
    console.error(`statelog: ${messageOf(error)}${code}`);
    process.exitCode = 1;
  });
