#!/usr/bin/env node
import { createRequire as __gwCreateRequire } from 'node:module';
import { dirname as __gwDirname } from 'node:path';
import { fileURLToPath as __gwFileURLToPath } from 'node:url';
const require = __gwCreateRequire(import.meta.url);
const __dirname = __gwDirname(__gwFileURLToPath(import.meta.url));

// action/main.ts
process.stderr.write("gateway-action: the GitHub Action entry point is not implemented yet; use the CLI (dist/cli.js).\n");
process.exitCode = 1;
