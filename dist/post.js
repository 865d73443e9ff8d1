#!/usr/bin/env node
import { createRequire as __gwCreateRequire } from 'node:module';
import { dirname as __gwDirname } from 'node:path';
import { fileURLToPath as __gwFileURLToPath } from 'node:url';
const require = __gwCreateRequire(import.meta.url);
const __dirname = __gwDirname(__gwFileURLToPath(import.meta.url));

// action/post.ts
process.exitCode = 0;
