#!/usr/bin/env node
// The `emofuse` command: a launcher committed to the repo (so npm links it at install time) that runs the
// esbuild bundle in ../dist. Build it with `npm run build` (scripts/setup.sh does).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/emofuse.js', import.meta.url);
if (!existsSync(bundle)) {
  console.error("emofuse: the CLI is not built yet. Run 'npm run build' (or 'bash scripts/setup.sh') in the emofuse folder.");
  process.exit(2);
}
await import(bundle.href);
