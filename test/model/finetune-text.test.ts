// Fine-tuning the text encoder end to end (packages/model/src/train/finetune-text.ts) on a small MELD text subset
// with the tiny random BERT fixture (its ONNX file has the layout of the converted MiniLM): the fusion head reads the
// encoder's states, the top k blocks train and the rest stays as loaded, and a run is a function of its seed.
// Needs the MELD text of the offline assets (skipped, with the reason, where absent).

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyMeldCache } from '../helpers/tiny-meld.ts';
import { OrtBackend } from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { readBertWeights } from '../../packages/model/src/fusion/text-encoder-weights.ts';
import {
  FINETUNED_FILE,
  finetuneText,
  type FinetuneTextOptions,
  loadFinetuned,
  predictTexts,
} from '../../packages/model/src/train/finetune-text.ts';
import { TrainableTextEncoder } from '../../packages/model/src/fusion/text-encoder.ts';
import { decodeSafetensors, encodeSafetensors } from '../../packages/model/src/cache/safetensors.ts';

const meld = join(modelSettings.assetsDir, 'meld-text');
const have = existsSync(join(meld, 'dev_sent_emo.csv'));
const bert = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-finetune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!have)(`finetune-text on 60 MELD utterances, tiny random BERT${have ? '' : ` (skipped: no ${meld})`}`, () => {
  const cache = join(tmp, 'cache');
  beforeAll(async () => {
    await tinyMeldCache(tmp, cache, bert);
  }, 120_000);

  const opts = (over: Partial<FinetuneTextOptions> = {}): FinetuneTextOptions => ({
    features: cache,
    modelFolder: bert,
    modelSpec: bert,
    trainTop: 1,
    textLr: 1e-3,
    layerDecay: 1,
    lr: 1e-3,
    epochs: 2,
    batchSize: 8,
    seed: 0,
    width: 16,
    heads: 2,
    maxTextLen: 64,
    weightDecay: 0.01,
    ...over,
  });

  it('trains the top block only, and the same seed gives the same run', async () => {
    const be = OrtBackend.create({ threads: 1 });
    const a = await finetuneText(be, opts());
    const b = await finetuneText(be, opts());
    expect(a.epochs.map((e) => e.loss)).toEqual(b.epochs.map((e) => e.loss));
    expect(a.epochs.every((e) => Number.isFinite(e.loss) && e.devWeightedF1 >= 0)).toBe(true);
    const loaded = readBertWeights(bert).weights;
    const tuned = await a.encoder.readState();
    const changed = (n: string) => tuned.get(n)!.some((v, i) => v !== loaded.get(n)![i]);
    expect(changed('encoder.layer.1.attention.self.query.weight')).toBe(true);
    expect(changed('encoder.layer.1.output.LayerNorm.bias')).toBe(true);
    expect(changed('encoder.layer.0.attention.self.query.weight')).toBe(false);
    expect(changed('embeddings.word_embeddings.weight')).toBe(false);
    const c = await finetuneText(be, opts({ seed: 1 }));
    expect(c.epochs.map((e) => e.loss)).not.toEqual(a.epochs.map((e) => e.loss));
    await be.destroy();
  }, 120_000);

  it('trainTop = layers + 1 trains the embeddings too (the rows of the tokens seen)', async () => {
    const be = OrtBackend.create({ threads: 1 });
    const r = await finetuneText(be, opts({ trainTop: 3, epochs: 1 }));
    const loaded = readBertWeights(bert).weights.get('embeddings.word_embeddings.weight')!;
    const tuned = (await r.encoder.readState()).get('embeddings.word_embeddings.weight')!;
    const C = 32;
    const rows = new Set<number>();
    for (let i = 0; i < tuned.length; i++) if (tuned[i] !== loaded[i]) rows.add(Math.floor(i / C));
    expect(rows.size).toBeGreaterThan(10);
    expect(rows.has(2)).toBe(true); // [CLS] (id 2 of the fixture's vocabulary); unseen tokens' rows stay as loaded
    expect(rows.size).toBeLessThan(302);
    await be.destroy();
  }, 120_000);

  it('the best epoch is saved as a delta on the base model; predictions read it back, and differ from the frozen encoder', async () => {
    const be = OrtBackend.create({ threads: 1 });
    const out = join(tmp, 'run');
    mkdirSync(out, { recursive: true });
    const r = await finetuneText(be, opts({ epochs: 1, outDir: out, textLr: 1e-2 }));
    const texts = ['Oh my God!', 'I really do not want to talk about it.', 'fine'];
    const trained = await predictTexts(be, r, bert, texts);
    const loaded = loadFinetuned(be, join(out, FINETUNED_FILE), bert);
    expect(await predictTexts(be, loaded, bert, texts)).toEqual(trained);
    const { config, weights } = readBertWeights(bert);
    const frozen = {
      encoder: TrainableTextEncoder.create(be, config, { weights, maxLen: loaded.model.config.maxTextLen }),
      model: loaded.model,
    };
    const base = await predictTexts(be, frozen, bert, texts);
    expect(base).not.toEqual(trained);
    expect(trained.every((p) => Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5)).toBe(true);
    await be.destroy();
  }, 120_000);

  it("a delta records its GELU form ('erf'); one with none recorded (fine-tuned before the erf form) runs with tanh", async () => {
    const be = OrtBackend.create({ threads: 1 });
    const out = join(tmp, 'run-gelu');
    mkdirSync(out, { recursive: true });
    await finetuneText(be, opts({ epochs: 1, outDir: out }));
    const file = join(out, FINETUNED_FILE);
    const d = decodeSafetensors(readFileSync(file), file);
    expect(d.metadata.gelu).toBe('erf');
    expect(loadFinetuned(be, file, bert).encoder.config.gelu).toBe('erf');
    const { gelu: _, ...old } = d.metadata;
    const oldFile = join(out, 'old-delta.safetensors');
    writeFileSync(oldFile, encodeSafetensors(Object.fromEntries(d.tensors), old));
    expect(loadFinetuned(be, oldFile, bert).encoder.config.gelu).toBe('tanh');
    writeFileSync(oldFile, encodeSafetensors(Object.fromEntries(d.tensors), { ...old, gelu: 'relu' }));
    expect(() => loadFinetuned(be, oldFile, bert)).toThrow(/old-delta\.safetensors: metadata 'gelu' is "relu", expected 'erf' or 'tanh'/);
    await be.destroy();
  }, 120_000);
});
