#!/usr/bin/env node
// Runs the built CLI (dist/, written by `npm run build`, which `npm install` and `npm ci` run as `prepare`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(`refscope: ${new URL('..', main).pathname} is not built: run npm run build in ${new URL('../', import.meta.url).pathname}`);
  process.exit(2);
}
await import(main.href);
