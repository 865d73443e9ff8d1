#!/usr/bin/env node
import { createRequire as __gwCreateRequire } from 'node:module';
const require = __gwCreateRequire(import.meta.url);

// action/main.ts
process.stderr.write("gateway-action: the GitHub Action entry point is not implemented yet; use the CLI (dist/cli.js).\n");
process.exitCode = 1;
