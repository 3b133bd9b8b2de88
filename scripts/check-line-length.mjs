// Lists every line over 140 characters in the tracked .ts/.mjs/.js files (test and script fixtures excluded) and
// exits 1 if there is one. Biome formats code to 140 columns (biome.json) but does not wrap comments or long strings;
// this catches those. Part of `npm run lint`.
//   node scripts/check-line-length.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX = 140;
const root = fileURLToPath(new URL('..', import.meta.url));
const files = execFileSync('git', ['ls-files', '-z', '--', '*.ts', '*.mjs', '*.js'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 })
  .split('\0')
  .filter((f) => f !== '' && !f.split('/').includes('fixtures'));
let long = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch {
    continue; // tracked but deleted in the working tree
  }
  text.split('\n').forEach((line, i) => {
    const length = [...line.replace(/\r$/, '')].length; // characters, not UTF-16 units
    if (length > MAX) {
      console.log(`${file}:${i + 1}: ${length} characters (at most ${MAX})`);
      long++;
    }
  });
}
if (long > 0) {
  console.error(`${long} line(s) over ${MAX} characters: wrap comments at word boundaries, split long strings with + (same text)`);
  process.exit(1);
}
