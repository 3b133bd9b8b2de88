// The pieces of the small-corpus recipe: input standardization (statistics, checkpoint round trip, applied by
// eval and predict), the `linear` variant against a float64 reference, speaker-grouped folds, and the ablation's
// linear floor.

import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CpuBackend,
  FusionModel,
  Predictor,
  computeInputNorm,
  createAudioEncoder,
  createTextEncoder,
  evaluate,
  evaluateCheckpoint,
  loadAudio,
  foldEvaluations,
  loadCheckpoint,
  memoryFeatureSplit,
  normalizeInputs,
  readSafetensors,
  runAblation,
  selectSplit,
  speakerFolds,
  train,
  withLinearFloor,
  writeSafetensors,
  type FeatureSet,
  type UtteranceFeatures,
} from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { tinyConfig, tinyInputs } from './helpers.ts';

/** n utterances with a class cue, features far from mean 0 / std 1 (offset 50, scale 20 on some dims). */
function offsetUtterances(n: number, K: number, Ct: number, Ca: number, seed: number, prefix = 'u'): UtteranceFeatures[] {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  return Array.from({ length: n }, (_, i) => {
    const label = i % K;
    const [lt, la] = [1 + (i % 3), 2 + (i % 4)];
    const text = Float32Array.from({ length: lt * Ct }, (_, j) => 50 + 20 * (j % Ct === 0 ? 1 : 0.1) * rnd() + (j % Ct === label ? 3 : 0));
    const audio = Float32Array.from({ length: la * Ca }, (_, j) => -7 + 0.01 * rnd() + (j % Ca === label ? 0.02 : 0));
    return { id: `${prefix}${i}`, label, text, textLen: lt, audio, audioLen: la };
  });
}

function offsetFeatures(Ct = 4, Ca = 5): FeatureSet {
  const K = 3;
  return {
    classNames: ['a', 'b', 'c'],
    textDim: Ct,
    audioDim: Ca,
    textEncoder: 'arrays',
    audioEncoder: 'arrays',
    splits: {
      train: memoryFeatureSplit(offsetUtterances(24, K, Ct, Ca, 1, 'tr'), Ct, Ca),
      dev: memoryFeatureSplit(offsetUtterances(9, K, Ct, Ca, 2, 'dv'), Ct, Ca),
      test: memoryFeatureSplit(offsetUtterances(9, K, Ct, Ca, 3, 'te'), Ct, Ca),
    },
  };
}

describe('input standardization', () => {
  it('statistics are the float64 mean and std over kept tokens of the train split; padding stays 0', () => {
    const fs = offsetFeatures();
    const split = fs.splits.train!;
    const norm = computeInputNorm(split, { Tt: 3, Ta: 5, Ct: 4, Ca: 5, text: true, audio: true, pooled: false });
    const utts = offsetUtterances(24, 3, 4, 5, 1, 'tr');
    for (const [m, C] of [
      ['text', 4],
      ['audio', 5],
    ] as const) {
      for (let c = 0; c < C; c++) {
        const xs = utts.flatMap((u) => Array.from({ length: u[`${m}Len`] }, (_, t) => u[m][t * C + c]!));
        const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
        const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
        expect(norm[m]!.mean[c]).toBeCloseTo(mean, 3);
        expect(norm[m]!.std[c]! / sd).toBeCloseTo(1, 4);
      }
    }
    const b = split.batch([0, 1, 2], { rows: 4, Tt: 3, Ta: 5 });
    const x = normalizeInputs(b, { B: 4, Tt: 3, Ta: 5, Ct: 4, Ca: 5 }, norm, false);
    for (let r = 0; r < 4 * 3; r++) if (!b.textMask[r]) expect([...x.text.subarray(r * 4, r * 4 + 4)]).toEqual([0, 0, 0, 0]);
    expect(Math.abs(x.text[0]!)).toBeLessThan(5); // 50 + noise became a few std at most
  });

  it('a zero-variance dimension keeps std 1', () => {
    const u = (id: string, label: number): UtteranceFeatures => ({
      id,
      label,
      text: new Float32Array([3, id.length]),
      textLen: 1,
      audio: new Float32Array([1]),
      audioLen: 1,
    });
    const split = memoryFeatureSplit([u('a', 0), u('bb', 1), u('ccc', 0)], 2, 1);
    const norm = computeInputNorm(split, { Tt: 1, Ta: 1, Ct: 2, Ca: 1, text: true, audio: true, pooled: false });
    expect(norm.text!.std[0]).toBe(1);
    expect(norm.text!.mean[0]).toBe(3);
    expect(norm.text!.std[1]).toBeCloseTo(Math.sqrt(2 / 3), 6);
  });

  it('train saves the statistics in the checkpoint; eval and a reloaded model apply them (and they matter)', async () => {
    const fs = offsetFeatures();
    const dir = mkdtempSync(join(tmpdir(), 'emofuse-norm-'));
    const be = new CpuBackend('f32');
    const r = await train(be, fs, {
      model: { fusion: 'cross-self', width: 8, heads: 2, seed: 3 },
      epochs: 2,
      batchSize: 8,
      lr: 1e-2,
      outDir: dir,
    });
    const { tensors } = readSafetensors(r.lastCheckpoint);
    const want = computeInputNorm(fs.splits.train!, {
      Tt: r.model.config.maxTextLen,
      Ta: r.model.config.maxAudioLen,
      Ct: 4,
      Ca: 5,
      text: true,
      audio: true,
      pooled: true,
    });
    expect([...tensors.get('norm.text.mean')!.data]).toEqual([...want.text!.mean]);
    expect([...tensors.get('norm.audio.std')!.data]).toEqual([...want.audio!.std]);
    expect(r.model.config.linearSkip).toBe(true); // the default: the linear skip's stats [2 Ct + 2 Ca] are saved too
    expect([...tensors.get('norm.pooled.std')!.data]).toEqual([...want.pooled!.std]);
    const noSkip = await train(new CpuBackend('f32'), fs, {
      model: { fusion: 'cross-self', width: 8, heads: 2, seed: 3, linearSkip: false },
      epochs: 1,
      batchSize: 8,
      lr: 1e-2,
      outDir: join(dir, 'no-skip'),
    });
    // without the skip only the linear head has pooled stats
    expect(readSafetensors(noSkip.lastCheckpoint).tensors.has('norm.pooled.mean')).toBe(false);

    const { model } = loadCheckpoint(new CpuBackend('f32'), r.lastCheckpoint);
    const inMemory = await evaluate(r.model, fs.splits.test!, fs.classNames, 8);
    const reloaded = await evaluate(model, fs.splits.test!, fs.classNames, 8);
    expect(reloaded.probabilities).toEqual(inMemory.probabilities);
    const { report } = await evaluateCheckpoint(new CpuBackend('f32'), {
      checkpoint: r.lastCheckpoint,
      features: fs,
      source: 'offset features',
      split: 'test',
      batchSize: 8,
      outDir: join(dir, 'eval'),
    });
    expect(report.weightedF1).toBe(inMemory.weightedF1);

    // The same weights without the statistics read other inputs: other outputs.
    const stripped = join(dir, 'stripped.safetensors');
    const { tensors: all, metadata } = readSafetensors(r.lastCheckpoint);
    for (const k of [...all.keys()]) if (k.startsWith('norm.')) all.delete(k);
    writeSafetensors(stripped, all, metadata);
    const bare = loadCheckpoint(new CpuBackend('f32'), stripped).model;
    expect(bare.inputNorm).toBeNull();
    const other = await evaluate(bare, fs.splits.test!, fs.classNames, 8);
    expect(other.probabilities).not.toEqual(inMemory.probabilities);
  });

  it('a checkpoint whose statistics do not fit the model is refused with the tensor names', () => {
    const m = FusionModel.create(new CpuBackend('f32'), tinyConfig('audio'));
    expect(() => m.setInputNorm({ audio: { mean: new Float32Array(3), std: new Float32Array(3).fill(1) } })).toThrow(
      /'audio': 3 means and 3 stds for 6 input dimensions/,
    );
    expect(() => m.setInputNorm({ audio: { mean: new Float32Array(6), std: new Float32Array(6) } })).toThrow(/std finite and > 0/);
  });

  const haveEncoders =
    existsSync(join(modelSettings.assetsDir, 'tokenizer-bert-base-uncased/tokenizer.json')) &&
    existsSync(join(modelSettings.assetsDir, 'emodb/wav/03a01Fa.wav'));
  it.runIf(haveEncoders)('predict applies the checkpoint statistics (hash + logmel encoders, an EmoDB clip)', async () => {
    const te = await createTextEncoder('hash');
    const ae = await createAudioEncoder('logmel');
    const clip = join(modelSettings.assetsDir, 'emodb/wav/03a01Fa.wav');
    const [t, a] = [
      await te.encode(['Der Lappen liegt auf dem Eisschrank.']),
      await ae.encode([loadAudio(clip, { sampleRate: ae.sampleRate })]),
    ];
    // A tiny model on (train set = this one utterance, twice, with offsets) so that the statistics are far from 0 / 1.
    const u = (id: string, off: number): UtteranceFeatures => ({
      id,
      label: id === 'x' ? 0 : 1,
      text: t.tokens.map((v) => v + off),
      textLen: t.lengths[0]!,
      audio: a.tokens.map((v) => 3 * v - off),
      audioLen: a.lengths[0]!,
    });
    const split = memoryFeatureSplit([u('x', 1), u('y', -2)], te.dim, ae.dim);
    const fs: FeatureSet = {
      classNames: ['p', 'q'],
      textDim: te.dim,
      audioDim: ae.dim,
      textEncoder: 'hash',
      audioEncoder: 'logmel',
      splits: { train: split, dev: split },
    };
    const dir = mkdtempSync(join(tmpdir(), 'emofuse-norm-predict-'));
    const r = await train(new CpuBackend('f32'), fs, {
      model: { fusion: 'cross-self', width: 8, heads: 2 },
      epochs: 1,
      batchSize: 2,
      lr: 1e-2,
      outDir: dir,
    });
    const p = await Predictor.open(new CpuBackend('f32'), r.lastCheckpoint);
    const [pred] = await p.predict([{ id: 'c', text: 'Der Lappen liegt auf dem Eisschrank.', audio: clip }]);
    await p.dispose();
    // By hand: the same encoder output, standardized with the checkpoint's token statistics, through the model
    // left with only the linear skip's statistics (which it applies to the stats of the tokens it is given).
    const { model } = loadCheckpoint(new CpuBackend('f32'), r.lastCheckpoint);
    const norm = model.inputNorm!;
    expect(norm.pooled).toBeDefined();
    model.setInputNorm({ pooled: norm.pooled! });
    const c = model.config;
    const x = normalizeInputs(
      { text: t.tokens, textMask: t.mask, audio: a.tokens, audioMask: a.mask },
      { B: 1, Tt: t.T, Ta: a.T, Ct: c.textDim, Ca: c.audioDim },
      norm,
      false,
    );
    const logits = await model.predict({ text: x.text, textMask: t.mask, audio: x.audio, audioMask: a.mask, labels: [-1] });
    const z = Math.exp(logits[0]! - logits[1]!);
    expect(pred!.probabilities.p).toBeCloseTo(z / (1 + z), 5);
    // and without the statistics the answer differs
    model.setInputNorm(null);
    const raw = await model.predict({ text: t.tokens, textMask: t.mask, audio: a.tokens, audioMask: a.mask, labels: [-1] });
    expect(Math.abs(raw[0]! - raw[1]! - (logits[0]! - logits[1]!))).toBeGreaterThan(1e-4);
  });
});

describe('the linear variant', () => {
  it('logits = standardized [mean, std] of standardized tokens @ W + b, against float64 by hand', async () => {
    const be = new CpuBackend('f64');
    const config = tinyConfig('linear', { dropout: 0 });
    const model = FusionModel.create(be, config);
    const { textDim: Ct, audioDim: Ca, maxTextLen: Tt, maxAudioLen: Ta, numClasses: K } = config;
    const P = 2 * Ct + 2 * Ca;
    const st = (n: number, k: number) => ({
      mean: Float32Array.from({ length: n }, (_, i) => 0.1 * i - k),
      std: Float32Array.from({ length: n }, (_, i) => 0.5 + 0.25 * ((i + k) % 3)),
    });
    const norm = { text: st(Ct, 1), audio: st(Ca, 2), pooled: st(P, 0) };
    model.setInputNorm(norm);
    const B = 3;
    const inp = tinyInputs(config, B, 5);
    const logits = await model.predict(inp);
    const state = await model.readState();
    const W = state.get('classifier.w')!.value; // [P, K]
    const bias = state.get('classifier.b')!.value;
    for (let b = 0; b < B; b++) {
      const feat: number[] = [];
      for (const [x, mask, T, C, s] of [
        [inp.text, inp.textMask, Tt, Ct, norm.text],
        [inp.audio, inp.audioMask, Ta, Ca, norm.audio],
      ] as const) {
        const kept = Array.from({ length: T }, (_, t) => t).filter((t) => mask[b * T + t]! > 0);
        const z = (t: number, c: number) => (x[(b * T + t) * C + c]! - s.mean[c]!) / s.std[c]!;
        const mean = Array.from({ length: C }, (_, c) => kept.reduce((a, t) => a + z(t, c), 0) / kept.length);
        const sd = mean.map((m, c) => Math.sqrt(kept.reduce((a, t) => a + (z(t, c) - m) ** 2, 0) / kept.length));
        feat.push(...mean, ...sd);
      }
      const f = feat.map((v, i) => (v - norm.pooled.mean[i]!) / norm.pooled.std[i]!);
      for (let k = 0; k < K; k++) {
        const want = f.reduce((a, v, i) => a + v * W[i * K + k]!, bias[k]!);
        expect(logits[b * K + k]).toBeCloseTo(want, 5); // float32 statistics and weights, float64 arithmetic
      }
    }
    expect(model.numParams).toBe(P * K + K);
  });

  it('trains on a text-only feature set (a missing modality pools to zeros) and learns the task', async () => {
    const Ct = 4;
    const strip = (us: UtteranceFeatures[]) => us.map((u) => ({ ...u, audio: new Float32Array(0), audioLen: 0 }));
    const fs: FeatureSet = {
      ...offsetFeatures(Ct, 1),
      audioEncoder: 'none',
      splits: Object.fromEntries(
        ['train', 'dev', 'test'].map((n, i) => [
          n,
          memoryFeatureSplit(strip(offsetUtterances(n === 'train' ? 60 : 30, 3, Ct, 1, i + 1, n)), Ct, 1),
        ]),
      ),
    };
    const r = await train(new CpuBackend('f32'), fs, {
      model: { fusion: 'linear', dropout: 0 },
      epochs: 30,
      batchSize: 10,
      lr: 3e-2,
      outDir: mkdtempSync(join(tmpdir(), 'emofuse-lin-')),
    });
    const m = await evaluate(r.model, fs.splits.test!, fs.classNames, 10);
    expect(m.accuracy).toBeGreaterThan(0.9); // the class cue is +3 on one text dim (std 20 on dim 0, 2 elsewhere)
  });
});

describe('speaker-grouped folds', () => {
  it('never split a speaker, cover every utterance once, and balance sizes', () => {
    const speakers = Array.from({ length: 200 }, (_, i) => `s${(i * 7) % 9}${i % 2 ? '' : 'x'}`); // 18 speakers of uneven sizes
    for (const k of [2, 3, 5]) {
      const folds = speakerFolds(speakers, k);
      expect(folds.flat().sort((a, b) => a - b)).toEqual(speakers.map((_, i) => i));
      const owner = new Map<string, number>();
      for (const [j, f] of folds.entries()) {
        for (const i of f) {
          expect(owner.get(speakers[i]!) ?? j, `speaker ${speakers[i]} in two folds`).toBe(j);
          owner.set(speakers[i]!, j);
        }
      }
      const sizes = folds.map((f) => f.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(
        Math.max(...[...new Set(speakers)].map((s) => speakers.filter((x) => x === s).length)),
      );
    }
    expect(() => speakerFolds(['a', 'a', 'b'], 3)).toThrow(/need at least 3 speakers, found 2/);
  });

  it('selectSplit copies rows from several splits into one batch, in order', () => {
    const fs = offsetFeatures();
    const s = selectSplit([
      { split: fs.splits.train!, indices: [5, 2] },
      { split: fs.splits.dev!, indices: [1] },
    ]);
    expect(s.ids).toEqual(['tr5', 'tr2', 'dv1']);
    const b = s.batch([2, 0], { rows: 3, Tt: 3, Ta: 5 });
    const direct = fs.splits.dev!.batch([1], { rows: 1, Tt: 3, Ta: 5 });
    expect([...b.audio.subarray(0, 25)]).toEqual([...direct.audio]);
    expect([...b.labels]).toEqual([fs.splits.dev!.labels[1], fs.splits.train!.labels[5], -1]);
    expect(s.batch([0, 1, 2]).Tt).toBe(Math.max(...[5, 2].map((i) => 1 + (i % 3)), 1 + (1 % 3)));
  });

  it('folds train on the other speakers only; ablate --folds scores every fold and always adds the linear floor', async () => {
    const fs = offsetFeatures();
    const speakerOf = (id: string) => `spk${Number(id.slice(2)) % 4}${id.slice(0, 2)}`; // 4 speakers in train, 4 in dev
    const o = { folds: 3, speakerOf, source: 'offset features', train: { epochs: 1, batchSize: 8, lr: 1e-3 } };
    const evals = foldEvaluations(fs, o);
    expect(evals.map((e) => e.test.size).reduce((a, b) => a + b, 0)).toBe(24 + 9);
    for (const e of evals) {
      const trainSpeakers = new Set(e.features.splits[e.train.trainSplit!]!.ids.map(speakerOf));
      expect(e.test.ids.filter((id) => trainSpeakers.has(speakerOf(id)))).toEqual([]);
      expect(e.features.splits[e.train.trainSplit!]!.size + e.test.size).toBe(33);
      expect(e.train.patience).toBe(0); // the held-out fold chooses nothing
    }
    const dir = mkdtempSync(join(tmpdir(), 'emofuse-folds-'));
    const result = await runAblation(fs, {
      ...o,
      variants: ['audio'],
      seeds: [0],
      testSplit: 'test',
      outDir: dir,
      backend: 'cpu',
      train: { ...o.train, model: { width: 8, heads: 2 } },
    });
    expect(result.rows.map((r) => r.fusion)).toEqual(['audio', 'linear']);
    expect(result.rows[0]!.runs!.map((r) => r.fold)).toEqual([0, 1, 2]);
    const all = result.folds!.speakers.flat();
    expect(new Set(all).size).toBe(all.length); // no speaker in two folds
    expect(withLinearFloor(['linear', 'text'])).toEqual(['linear', 'text']);
  });
});
