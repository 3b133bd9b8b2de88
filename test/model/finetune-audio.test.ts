// Fine-tuning the text encoder under a head that reads audio too (finetuneText with fusion 'cross-self'): the texts go
// through the trainable encoder (the tiny random BERT fixture), the audio features come from the cache (logmel of
// generated tones in RAVDESS's layout: 12 train clips, 4 dev; test/helpers/tone-ravdess.ts). The run trains, saves the
// audio standardization with the delta, evaluates as it trained, exports (encoder and audio standardization in the
// graph) in agreement with our forward, resumes exactly, and a text-only prediction is refused (it has no audio).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrtBackend } from '@emofuse/model';
import { TINY_BERT as bert, toneRavdessCache } from '../helpers/tone-ravdess.ts';
import { decodeSafetensors } from '../../packages/model/src/cache/safetensors.ts';
import { readBertWeights } from '../../packages/model/src/fusion/text-encoder-weights.ts';
import { openFeatureCache } from '../../packages/model/src/cache/feature-cache.ts';
import { exportFinetunedToOnnx } from '../../packages/model/src/export/index.ts';
import { checkTokenOnnxAgainstModel, randomAudioOf, randomTokenRows } from '../../packages/model/src/export/validate.ts';
import {
  audioBatch,
  cacheTexts,
  evaluateFinetuned,
  FINETUNED_FILE,
  FINETUNED_LAST_FILE,
  finetuneText,
  type FinetuneTextOptions,
  loadFinetuned,
  predictTexts,
  tokenizeTexts,
} from '../../packages/model/src/train/finetune-text.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-finetune-audio-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('finetune-text with a cross-self head: text through the trainable encoder, audio from the cache', () => {
  const cache = join(tmp, 'cache');
  beforeAll(async () => {
    await toneRavdessCache(tmp);
  }, 180_000);

  const opts = (outDir: string, over: Partial<FinetuneTextOptions> = {}): FinetuneTextOptions => ({
    features: cache,
    modelFolder: bert,
    modelSpec: bert,
    fusion: 'cross-self',
    trainTop: 1,
    textLr: 1e-2,
    layerDecay: 1,
    lr: 3e-3,
    epochs: 2,
    batchSize: 4,
    seed: 0,
    width: 16,
    heads: 2,
    maxTextLen: 64,
    weightDecay: 0.01,
    outDir,
    ...over,
  });
  const run = async (o: FinetuneTextOptions) => {
    const be = OrtBackend.create({ threads: 1 });
    try {
      return await finetuneText(be, o);
    } finally {
      await be.destroy();
    }
  };

  it('trains encoder and head, saves the audio norm, evaluates as it trained, exports in agreement, resumes exactly', async () => {
    const dir = join(tmp, 'run');
    const r = await run(opts(dir));
    expect(r).toMatchObject({ steps: 6, interrupted: false });
    expect(r.model.config).toMatchObject({ fusion: 'cross-self', textDim: 32 });
    expect(r.model.config.audioDim).toBeGreaterThan(1);
    expect(r.epochs.every((e) => Number.isFinite(e.loss))).toBe(true);
    const tuned = await r.encoder.readState();
    const loaded = readBertWeights(bert).weights;
    const changed = (n: string) => tuned.get(n)!.some((v, i) => v !== loaded.get(n)![i]);
    expect(changed('encoder.layer.1.attention.self.query.weight')).toBe(true);
    expect(changed('encoder.layer.0.attention.self.query.weight')).toBe(false);
    const file = join(dir, FINETUNED_FILE);
    const names = [...decodeSafetensors(readFileSync(file), file).tensors.keys()];
    expect(names).toEqual(
      expect.arrayContaining(['norm.audio.mean', 'norm.audio.std', 'head.audio.proj.w', 'head.cross.text_from_audio.q.w']),
    );
    // eval reads the delta with its audio standardization: the best epoch's dev weighted F1 again
    const be = OrtBackend.create({ threads: 1 });
    try {
      const ev = await evaluateFinetuned(be, { file, features: cache, split: 'dev', batchSize: 4 });
      expect(ev.ids).toHaveLength(4);
      expect(ev.metrics.weightedF1).toBeCloseTo(r.bestDevWeightedF1, 6);
      // a text alone has no audio for this head: refused, saying what it needs
      await expect(predictTexts(be, loadFinetuned(be, file, bert), bert, ['Kids are talking by the door'])).rejects.toThrow(
        /reads audio features too/,
      );
    } finally {
      await be.destroy();
    }
    // the ONNX export carries the encoder and the audio standardization: it agrees with our forward on the dev
    // utterances (their texts' token ids and cached audio) and on seeded random token rows with random audio
    const { onnx, file: f } = await exportFinetunedToOnnx(file);
    const be2 = OrtBackend.create({ threads: 1 });
    try {
      const m = loadFinetuned(be2, file, bert);
      const c = m.model.config;
      const sp = cacheTexts(cache)('dev');
      const dev = await tokenizeTexts(bert, sp.texts, c.maxTextLen);
      const split = openFeatureCache(cache).splits.dev!;
      const a = await checkTokenOnnxAgainstModel(onnx, m, dev, 4, (idx) => audioBatch(split, idx, c.maxAudioLen));
      const rnd = randomTokenRows(f.encoder.config.vocab, c.maxTextLen, 8, 5);
      const b = await checkTokenOnnxAgainstModel(onnx, m, rnd, 4, randomAudioOf(8, c.audioDim, c.maxAudioLen, 6));
      console.log(
        `cross-self export vs ort forward: dev ${a.utterances} max |probability diff| ${a.maxAbsProbabilities.toExponential(2)}, ` +
          `random ${b.utterances} ${b.maxAbsProbabilities.toExponential(2)} ` +
          `(logits ${Math.max(a.maxAbsLogits, b.maxAbsLogits).toExponential(2)})`,
      );
      for (const x of [a, b]) {
        expect(x.maxAbsLogits).toBeLessThan(1e-4);
        expect(x.maxAbsProbabilities).toBeLessThan(1e-5);
        expect(x.argmaxDisagreements).toBe(0);
      }
    } finally {
      await be2.destroy();
    }
    // stopped after step 3 (mid-epoch 1) and resumed: the same files byte for byte
    const stopped = join(tmp, 'stopped');
    expect(await run(opts(stopped, { stopAfterSteps: 3 }))).toMatchObject({ steps: 3, interrupted: true });
    expect(await run(opts(stopped, { resume: true }))).toMatchObject({ steps: 6, interrupted: false });
    for (const f of [FINETUNED_FILE, FINETUNED_LAST_FILE])
      expect(readFileSync(join(stopped, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
  }, 300_000);
});
