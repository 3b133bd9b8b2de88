// Bundles the CLI into one runnable ESM file, dist/emofuse.js, with every .wgsl shader inlined as text.
// Native or model-loading packages stay external and load from node_modules at run time.
import { build } from 'esbuild';
import { readFileSync, chmodSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: [new URL('./src/main.ts', import.meta.url).pathname],
  outfile: new URL('./dist/emofuse.js', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  loader: { '.wgsl': 'text' },
  conditions: ['@emofuse/source'], // the workspace packages' sources, not their built dist/
  external: ['webgpu', 'onnxruntime-node', 'onnxruntime-web', '@huggingface/transformers', 'sharp', '@resvg/resvg-js'],
  define: { EMOFUSE_VERSION: JSON.stringify(pkg.version) },
  banner: {
    js: [
      '#!/usr/bin/env node',
      "import { createRequire as __emofuseCreateRequire } from 'node:module';",
      'const require = __emofuseCreateRequire(import.meta.url);',
    ].join('\n'),
  },
  logLevel: 'warning',
});
chmodSync(new URL('./dist/emofuse.js', import.meta.url), 0o755);
