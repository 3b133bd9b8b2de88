// The ONNX export of a fine-tuned text model (export/fusion-onnx.ts with its text encoder in the graph): the tiny random
// BERT fixture fine-tuned (every block and the embeddings) on 40 MELD utterances, exported, and run by onnxruntime on
// token ids against our own forward of the same file (encoder + head, predictTokens: what predict and eval run) on ort,
// cpu and wgsl (skipped, with the reason, without an adapter):
// seeded random token rows and the dev texts through the fixture's tokenizer. Needs the MELD text of the offline assets.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyMeldCache } from '../helpers/tiny-meld.ts';
import { type Backend, CpuBackend, OrtBackend, WgslBackend } from '@emofuse/model';
import { openGpu } from '../helpers/gpu.ts';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { exportFinetunedToOnnx } from '../../packages/model/src/export/index.ts';
import { checkTokenOnnxAgainstModel, randomTokenRows } from '../../packages/model/src/export/validate.ts';
import { cacheTexts, FINETUNED_FILE, finetuneText, loadFinetuned, tokenizeTexts } from '../../packages/model/src/train/finetune-text.ts';

const require = createRequire(import.meta.url);
const meld = join(modelSettings.assetsDir, 'meld-text');
const have = existsSync(join(meld, 'dev_sent_emo.csv'));
const bert = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-finetune-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!have)(`export of a fine-tuned text model, tiny random BERT${have ? '' : ` (skipped: no ${meld})`}`, () => {
  const cache = join(tmp, 'cache');
  const run = join(tmp, 'run');
  const file = join(run, FINETUNED_FILE);
  beforeAll(async () => {
    await tinyMeldCache(tmp, cache, bert);
    const be = OrtBackend.create({ threads: 1 });
    await finetuneText(be, {
      features: cache,
      modelFolder: bert,
      modelSpec: bert,
      trainTop: 3,
      textLr: 1e-2,
      layerDecay: 1,
      lr: 1e-3,
      epochs: 1,
      batchSize: 8,
      seed: 0,
      width: 16,
      heads: 2,
      maxTextLen: 64,
      weightDecay: 0.01,
      outDir: run,
    });
    await be.destroy();
  }, 180_000);

  it('the graph takes token ids, names its tokenizer, and agrees with our forward on ort, cpu and wgsl', async () => {
    const { onnx, file: f } = await exportFinetunedToOnnx(file);
    const { onnx: proto } = require('onnx-proto') as typeof import('onnx-proto');
    const g = proto.ModelProto.decode(onnx);
    expect(g.graph!.input!.map((i) => i.name)).toEqual(['input_ids', 'text_mask', 'audio', 'audio_mask']);
    const ids = g.graph!.input![0]!.type!.tensorType!;
    expect(ids.elemType).toBe(proto.TensorProto.DataType.INT64);
    expect((ids.shape!.dim as { dimParam?: string | null }[]).map((d) => d.dimParam)).toEqual(['batch', 'text_len']);
    const meta = Object.fromEntries(g.metadataProps!.map((p) => [p.key, p.value]));
    expect(meta).toMatchObject({ text_input: 'token_ids', tokenizer: `bert:${bert}`, fusion: 'text' });
    expect(JSON.parse(meta.emofuse!)).toMatchObject({ textInput: 'token_ids', tokenizer: `bert:${bert}` });
    // every encoder weight is in the graph, the fine-tuned ones with their trained values
    const inits = new Set(g.graph!.initializer!.map((t) => t.name));
    for (const n of f.encoder.weights.keys()) expect(inits.has(`text.${n}`), n).toBe(true);
    const maxLen = f.head.maxTextLen;
    const dev = await tokenizeTexts(bert, cacheTexts(cache)('dev').texts, maxLen);
    const rows = [...randomTokenRows(f.encoder.config.vocab, maxLen, 12, 7), ...dev];
    const fx = await openGpu();
    const backends: Backend[] = [OrtBackend.create({ threads: 1 }), new CpuBackend('f32')];
    if (fx.gpu) backends.push(await WgslBackend.create(fx.gpu));
    else console.log(`wgsl: skipped (${fx.skipReason})`);
    for (const be of backends) {
      try {
        const m = loadFinetuned(be, file, bert);
        const check = await checkTokenOnnxAgainstModel(onnx, m, rows, 8);
        console.log(
          `${be.name}: ${check.utterances} token rows (12 random up to ${maxLen} tokens, ${dev.length} dev texts): max |logit diff| ` +
            `${check.maxAbsLogits.toExponential(2)}, max |probability diff| ${check.maxAbsProbabilities.toExponential(2)}`,
        );
        expect(check.utterances).toBe(12 + dev.length);
        expect(check.maxAbsLogits).toBeLessThan(1e-4);
        expect(check.maxAbsProbabilities).toBeLessThan(1e-5);
        expect(check.argmaxDisagreements).toBe(0);
      } finally {
        await be.destroy();
      }
    }
    await fx.gpu?.destroy();
  }, 300_000);
});
