// The Predictor (predict, analyze, the library's EmotionClassifier) on a fine-tuned text model (train --finetune-text's
// delta): the words tokenized by the base model's tokenizer through the fine-tuned encoder + head (encodeBatch), the
// audio of a cross-self head through the audio encoder of the features it was trained on (logmel here), standardized
// by the delta's norm.audio.*. Its probabilities equal eval's (evaluateFinetuned on the cache) for the same utterances;
// a text-only delta gives what predictTexts gives; a delta it cannot run is refused naming the file and the fix.
// Fixture: the tiny random BERT + logmel of RAVDESS-layout tones (test/helpers/tone-ravdess.ts).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmotionClassifier, OrtBackend, openDataset, Predictor } from '@emofuse/model';
import { TINY_BERT as bert, toneRavdessCache } from '../helpers/tone-ravdess.ts';
import { loadAudio } from '../../packages/model/src/audio/index.ts';
import { openFeatureCache } from '../../packages/model/src/cache/feature-cache.ts';
import { createAudioEncoder } from '../../packages/model/src/encoders/index.ts';
import type { FeatureSet, FeatureSplit } from '../../packages/model/src/features.ts';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../../packages/model/src/cache/safetensors.ts';
import {
  evaluateFinetuned,
  FINETUNED_FILE,
  finetuneText,
  type FinetuneTextOptions,
  loadFinetuned,
  predictTexts,
} from '../../packages/model/src/train/finetune-text.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-finetune-predict-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of a delta with its metadata changed (undefined: the key removed). */
function withMetadata(file: string, out: string, change: Record<string, string | undefined>): string {
  const d = decodeSafetensors(readFileSync(file), file);
  const tensors: Record<string, SafeTensor> = Object.fromEntries(d.tensors);
  const metadata = { ...d.metadata };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete metadata[k];
    else metadata[k] = v;
  }
  writeFileSync(out, encodeSafetensors(tensors, metadata));
  return out;
}

const maxDiff = (a: readonly number[][], b: readonly number[][]) =>
  Math.max(...a.flatMap((r, i) => r.map((v, k) => Math.abs(v - b[i]![k]!))));

describe('Predictor on a fine-tuned text model (text + audio and text-only deltas)', () => {
  const cache = join(tmp, 'cache');
  const files = { cross: join(tmp, 'cross', FINETUNED_FILE), text: join(tmp, 'text', FINETUNED_FILE) };
  beforeAll(async () => {
    await toneRavdessCache(tmp);
    const opts = (fusion: 'cross-self' | 'text', outDir: string): FinetuneTextOptions => ({
      features: cache,
      modelFolder: bert,
      modelSpec: bert,
      fusion,
      trainTop: 1,
      textLr: 1e-2,
      layerDecay: 1,
      lr: 3e-3,
      epochs: 1,
      batchSize: 4,
      seed: 0,
      width: 16,
      heads: 2,
      maxTextLen: 64,
      weightDecay: 0.01,
      outDir,
    });
    const be = OrtBackend.create({ threads: 1 });
    try {
      await finetuneText(be, opts('cross-self', join(tmp, 'cross')));
      await finetuneText(be, opts('text', join(tmp, 'text')));
    } finally {
      await be.destroy();
    }
  }, 240_000);

  const devItems = () => openDataset('ravdess', join(tmp, 'ravdess')).items.filter((u) => u.split === 'dev');

  it('cross-self: predict on the dev clips (their words and recordings) equals eval on the same features; load() too', async () => {
    const be = OrtBackend.create({ threads: 1 });
    try {
      const items = new Map(devItems().map((u) => [u.id, u]));
      const fs = openFeatureCache(cache);
      const sp = fs.splits.dev!;
      const inputs = sp.ids.map((id) => ({ id, text: items.get(id)!.text, audio: items.get(id)!.audio! }));
      const predictor = await Predictor.open(be, files.cross);
      expect(predictor.textOnly).toBe(false);
      expect(predictor.meta.audioEncoder).toBe('logmel');
      const preds = await predictor.predict(inputs);
      await predictor.dispose();
      const probs = preds.map((p) => predictor.classNames.map((c) => p.probabilities[c]!));
      // eval on the cache, its dev audio features as the clips encode in float32 (the cache stores float16)
      const logmel = await createAudioEncoder('logmel');
      const fresh = await logmel.encode(inputs.map((u) => loadAudio(u.audio, { sampleRate: logmel.sampleRate })));
      const split = Object.create(sp) as FeatureSplit;
      split.batch = (idx, shape) => {
        const b = sp.batch(idx, shape);
        const C = fs.audioDim;
        idx.forEach((i, r) => {
          const n = Math.min(b.Ta, fresh.T);
          b.audio.set(fresh.tokens.subarray(i * fresh.T * C, (i * fresh.T + n) * C), r * b.Ta * C);
        });
        return b;
      };
      const f32 = { ...fs, splits: { dev: split } } as FeatureSet;
      const ev = await evaluateFinetuned(be, { file: files.cross, features: cache, split: 'dev', batchSize: 4, featureSet: f32 });
      const d = maxDiff(probs, ev.probabilities);
      // eval on the cache as stored: its float16 features give other probabilities (near-constant logmel bins of 12
      // tone clips have tiny train std, which magnifies the rounding)
      const ev16 = await evaluateFinetuned(be, { file: files.cross, features: cache, split: 'dev', batchSize: 4 });
      console.log(
        `fine-tuned cross-self: predict vs eval on ${probs.length} dev clips, max |probability diff| ${d.toExponential(2)} ` +
          `(float32 features); vs eval on the float16 cache ${maxDiff(probs, ev16.probabilities).toExponential(2)}`,
      );
      expect(d).toBeLessThan(1e-5);
      expect(ev16.ids).toEqual(sp.ids);
      // the library: load({ checkpoint }) runs the same Predictor
      const clf = await EmotionClassifier.load(files.cross, { backend: be });
      const c = await clf.classifyAll(inputs);
      await clf.dispose();
      expect(
        maxDiff(
          c.map((x) => [...x.probs]),
          probs,
        ),
      ).toBeLessThan(1e-7);
    } finally {
      await be.destroy();
    }
  }, 120_000);

  it('text-only delta: the Predictor gives what predictTexts (predict before) gives; no audio needed', async () => {
    const be = OrtBackend.create({ threads: 1 });
    try {
      const texts = devItems().map((u) => u.text);
      const before = await predictTexts(be, loadFinetuned(be, files.text, bert), bert, texts);
      const predictor = await Predictor.open(be, files.text);
      expect(predictor.textOnly).toBe(true);
      const preds = await predictor.predict(texts.map((text, i) => ({ id: `u${i}`, text })));
      await predictor.dispose();
      const d = maxDiff(
        preds.map((p) => predictor.classNames.map((c) => p.probabilities[c]!)),
        before,
      );
      console.log(`fine-tuned text: Predictor vs predictTexts on ${texts.length} texts, max |probability diff| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(1e-7);
    } finally {
      await be.destroy();
    }
  }, 120_000);

  it('refuses a delta it cannot run, naming the file and the fix', async () => {
    const be = OrtBackend.create({ threads: 1 });
    try {
      const gone = withMetadata(files.cross, join(tmp, 'gone.safetensors'), { modelSpec: join(tmp, 'no-such-model') });
      await expect(Predictor.open(be, gone)).rejects.toThrow(/gone\.safetensors: .*no-such-model.*convert_minilm\.py/s);
      const old = withMetadata(files.cross, join(tmp, 'old.safetensors'), { audioEncoder: undefined });
      await expect(Predictor.open(be, old)).rejects.toThrow(
        /old\.safetensors: .*written before deltas recorded the audio encoder.*train --finetune-text/,
      );
    } finally {
      await be.destroy();
    }
  }, 60_000);
});
