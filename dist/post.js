#!/usr/bin/env node
import { createRequire as __gwCreateRequire } from 'node:module';
const require = __gwCreateRequire(import.meta.url);

// action/post.ts
process.exitCode = 0;
