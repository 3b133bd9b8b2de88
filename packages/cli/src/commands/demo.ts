// `emofuse demo`: serves the demo page (packages/demo, built to packages/demo/dist) on 127.0.0.1 with what it
// loads: a checkpoint, the encoders' local files (BERT tokenizer, AST filterbank settings) and local
// transformers.js models (Whisper) with onnxruntime-web's wasm. Nothing is fetched from a hub. Parsing, serving
// and printing only: the page runs the model package's code in the browser.

import type { Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ASR, DEFAULT_MODEL, defaultModelMissing, modelSettings, repoRoot } from '@emofuse/model';
import { createDemoServer } from '../demo-server.ts';
import { int } from '../options.ts';
import { UserError } from '../output.ts';

interface DemoFlags {
  checkpoint?: string;
  port: string;
  asr: string;
}

/** The BERT vocabulary the hash encoder's WordPiece reads (shipped with the model package), served at /vocab.txt. */
const BERT_VOCAB = join('packages', 'model', 'assets', 'bert-base-uncased', 'vocab.txt');
/** The asset folders the page's encoders read. */
const ASSET_FOLDERS = ['tokenizer-bert-base-uncased', 'ast-preprocessor'];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('serve the demo page on 127.0.0.1: record or drop a clip, see every class probability (fusion on WebGPU in the browser)')
    .option(
      '--checkpoint <file>',
      `the checkpoint the page loads first (default: the shipped model, ${DEFAULT_MODEL.name}; the page can load others)`,
    )
    .option('--port <n>', 'port on 127.0.0.1 (0: any free port)', '8765')
    .option('--asr <model>', 'Whisper model id the page may use, when its files are in the models folder', DEFAULT_ASR)
    .addHelpText(
      'after',
      `
Open the printed URL in a browser with WebGPU (Chrome, Edge; without WebGPU the page falls back to the CPU
references and says so). Without --checkpoint the page loads the shipped model (MELD's 7 emotions; licence
CC BY-NC-SA 4.0, from RAVDESS: non-commercial, share-alike). The page decodes the clip, encodes the words and the
sound with the checkpoint's encoders in the page from the models folder (all-MiniLM-L6-v2 through transformers.js,
Whisper tiny.en's encoder through onnxruntime-web; EMOFUSE_MODELS, default ./models), runs the fusion forward on our
WGSL kernels through navigator.gpu, and shows every class probability, the transcript, the encoders, the adapter
and each step's time. Whisper transcribes in the page when no words are typed.

Examples:
  emofuse demo
  emofuse demo --checkpoint runs/controlled/best.safetensors --port 0`,
    )
    .action(async (o: DemoFlags) => {
      const port = int(o.port, '--port', 0);
      if (port > 65535) throw new UserError(`--port must be at most 65535, got ${port}`);
      const page = demoDist();
      let checkpoint: string | null = null;
      if (o.checkpoint) {
        if (!existsSync(o.checkpoint) || !statSync(o.checkpoint).isFile())
          throw new UserError(`--checkpoint ${o.checkpoint}: no such file`);
        checkpoint = resolve(o.checkpoint);
      } else {
        if (!existsSync(DEFAULT_MODEL.file)) throw new UserError(defaultModelMissing());
        checkpoint = DEFAULT_MODEL.file;
      }
      const server = serveDemo({ page, checkpoint, asr: o.asr });
      await new Promise<void>((ok, fail) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          fail(
            err.code === 'EADDRINUSE'
              ? new UserError(`port ${port} on 127.0.0.1 is in use: choose another with --port (0 picks a free one)`)
              : err,
          ),
        );
        server.listen(port, '127.0.0.1', () => ok());
      });
      const { port: bound } = server.address() as { port: number };
      console.log(`emofuse demo: http://127.0.0.1:${bound}/`);
      console.log(
        checkpoint === DEFAULT_MODEL.file
          ? `model: ${DEFAULT_MODEL.summary}\nlicence: ${DEFAULT_MODEL.licence}`
          : checkpoint
            ? `checkpoint: ${checkpoint}`
            : `no checkpoint: pass --checkpoint or choose one in the page`,
      );
      console.log('Ctrl-C stops it.');
      await new Promise<void>((done) => {
        const stop = () => server.close(() => done());
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}

/** The built page: packages/demo/dist beside the CLI's own package (the bundle lives in packages/cli/dist). */
function demoDist(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [resolve(here, '../../demo/dist'), resolve(here, '../../../demo/dist')]) {
    if (existsSync(join(candidate, 'index.html')) && existsSync(join(candidate, 'app.js'))) return candidate;
  }
  throw new UserError("the demo page is not built: run 'npm run build' (or 'node packages/demo/build.mjs') in the emofuse folder");
}

/** The folder onnxruntime-web's wasm files are in (for Whisper in the page), or null. */
function ortWebDist(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve('onnxruntime-web')); // <package>/dist/ort.node.min.js
  } catch {
    return null;
  }
}

export function serveDemo(o: { page: string; checkpoint: string | null; asr: string }): Server {
  const assetFiles = ASSET_FOLDERS.flatMap((folder) => {
    const dir = join(modelSettings.assetsDir, folder);
    return existsSync(dir) ? readdirSync(dir).map((f) => `/assets/${folder}/${f}`) : [];
  });
  const asrFolder = join(modelSettings.modelsDir, o.asr);
  const vocab = join(repoRoot, BERT_VOCAB);
  const info = {
    bertVocab: existsSync(vocab),
    checkpoint: o.checkpoint
      ? {
          name: basename(o.checkpoint),
          path: o.checkpoint,
          ...(resolve(o.checkpoint) === resolve(DEFAULT_MODEL.file)
            ? { summary: DEFAULT_MODEL.summary, licence: DEFAULT_MODEL.licence }
            : {}),
        }
      : null,
    assetFiles,
    asr: { id: o.asr, available: existsSync(join(asrFolder, 'config.json')), folder: modelSettings.modelsDir },
  };
  const ort = ortWebDist();
  const roots: Record<string, string | null> = { '/assets/': modelSettings.assetsDir, '/models/': modelSettings.modelsDir, '/ort/': ort };
  const files: Record<string, string | null> = {
    '/': join(o.page, 'index.html'),
    '/index.html': join(o.page, 'index.html'),
    '/app.js': join(o.page, 'app.js'),
    '/app.js.map': join(o.page, 'app.js.map'),
    '/checkpoint': o.checkpoint,
    '/vocab.txt': vocab,
  };
  return createDemoServer({ files, roots, json: { '/api/info': info }, host: '127.0.0.1' });
}
