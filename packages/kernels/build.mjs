// Builds the published @emofuse/kernels: dist/index.js, one ESM file with every .wgsl shader inlined as text (the
// ops import their shaders from shaders/ at the repo root, which Node cannot import and a tarball would not carry),
// and dist/**/*.d.ts from tsc (tsconfig.build.json). Dependencies (webgpu) stay imports.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const here = (p) => new URL(p, import.meta.url).pathname;
rmSync(here('./dist'), { recursive: true, force: true });
await build({
  entryPoints: [here('./src/index.ts')],
  outfile: here('./dist/index.js'),
  bundle: true,
  packages: 'external',
  format: 'esm',
  platform: 'neutral', // Node and browsers: the runtime picks Dawn or navigator.gpu when it runs
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  logLevel: 'warning',
});
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', here('./tsconfig.build.json')], { stdio: 'inherit' });
