#!/usr/bin/env node
// Summarises an EMOFUSE_ERROR_LOG file (one JSON line per expectClose comparison) per kernel:
//   EMOFUSE_ERROR_LOG=/tmp/err.jsonl npx vitest run test/kernels && node scripts/error-report.mjs /tmp/err.jsonl
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/error-report.mjs <EMOFUSE_ERROR_LOG file>');
  process.exit(2);
}
const groups = new Map();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  const kernel = r.name.split(/[ [(]/)[0];
  const g = groups.get(kernel) ?? { n: 0, maxAbs: 0, maxRel: 0, atol: r.atol, rtol: r.rtol, failed: 0 };
  g.n++;
  g.maxAbs = Math.max(g.maxAbs, r.maxAbs);
  g.maxRel = Math.max(g.maxRel, r.maxRel);
  if (!r.ok) g.failed++;
  groups.set(kernel, g);
}
console.log('| kernel | comparisons | max abs err | max rel err (|ref| > 1e-6) | atol | rtol | failed |');
console.log('|---|---|---|---|---|---|---|');
for (const [k, g] of [...groups].sort()) {
  console.log(`| ${k} | ${g.n} | ${g.maxAbs.toExponential(2)} | ${g.maxRel.toExponential(2)} | ${g.atol} | ${g.rtol} | ${g.failed} |`);
}
