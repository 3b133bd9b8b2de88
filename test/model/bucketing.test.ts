// Paying only for real tokens: batches group utterances of similar length (seeded, so --resume stays exact) and
// each batch runs at its own bucketed lengths. A batch at shorter lengths gives the model the same numbers as the
// same batch padded to the model's longest (padding is masked everywhere), on every backend; an interrupted and
// resumed run with many batch shapes ends bit-for-bit where an uninterrupted one does.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '@emofuse/kernels';
import {
  BATCHES_PER_POOL,
  CpuBackend,
  FusionModel,
  LENGTH_BUCKET,
  OrtBackend,
  WgslBackend,
  batchShape,
  bucketLength,
  epochBatches,
  lengthKeys,
  memoryFeatureSplit,
  syntheticBimodal,
  train,
  type AdamwSettings,
  type Backend,
  type FusionVariant,
  type UtteranceFeatures,
} from '@emofuse/model';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';
import { tinyConfig } from './helpers.ts';

let fx: GpuFixture;
const dirs: string[] = [];
beforeAll(async () => {
  fx = await openGpu();
});
afterAll(async () => {
  await fx.gpu?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('length-grouped epoch batches', () => {
  // MELD-like text lengths: most short, a long tail (median ~12, longest 95)
  const r = mulberry32(4);
  const lens = Int32Array.from({ length: 3001 }, () => Math.min(95, 1 + Math.floor(Math.exp(1.2 + 1.4 * r() + 0.9 * r()))));
  const B = 32;

  it('every utterance once per epoch, ceil(n/B) batches, only one short; the same for the same (seed, epoch), new for another', () => {
    const a = epochBatches(lens, B, 3, 2);
    expect(a).toHaveLength(Math.ceil(lens.length / B));
    expect(a.filter((b) => b.length < B)).toHaveLength(1);
    expect(a.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: lens.length }, (_, i) => i));
    expect(epochBatches(lens, B, 3, 2)).toEqual(a);
    expect(epochBatches(lens, B, 3, 3)).not.toEqual(a);
    expect(epochBatches(lens, B, 4, 2)).not.toEqual(a);
  });

  it('batches of similar lengths: at most half the padded tokens of random batches at the longest length', () => {
    const batches = epochBatches(lens, B, 0, 0);
    const padded = batches.reduce(
      (s, b) => s + B * batchShape({ textLens: lens, audioLens: new Int32Array(lens.length) }, b, B, 95, 1).Tt,
      0,
    );
    const real = lens.reduce((s, l) => s + l, 0);
    const fixed = batches.length * B * 95;
    console.log(
      `tokens per epoch: real ${real}, bucketed ${padded} (${(padded / real).toFixed(2)}x), fixed ${fixed} ` +
        `(${(fixed / real).toFixed(2)}x); ${BATCHES_PER_POOL} batches per pool`,
    );
    expect(padded).toBeLessThan(1.5 * real);
    expect(padded).toBeLessThan(fixed / 2);
    // not sorted globally: short and long batches alternate through the epoch
    const longest = batches.map((b) => Math.max(...b.map((i) => lens[i]!)));
    const median = [...longest].sort((x, y) => x - y)[longest.length >> 1]!;
    const firstHalf = longest.slice(0, longest.length >> 1);
    expect(Math.max(...firstHalf)).toBeGreaterThan(median);
    expect(Math.min(...firstHalf)).toBeLessThan(median);
  });

  it('bucketLength rounds up to a multiple of LENGTH_BUCKET, at most the model length, at least 1', () => {
    expect([bucketLength(1, 95), bucketLength(8, 95), bucketLength(9, 95), bucketLength(94, 95), bucketLength(0, 1)]).toEqual([
      LENGTH_BUCKET,
      8,
      16,
      95,
      1,
    ]);
  });
});

/** Utterances of known lengths, features seeded. */
function utterances(lens: [number, number][], Ct: number, Ca: number, seed: number): UtteranceFeatures[] {
  const r = mulberry32(seed);
  const u = (n: number) => Float32Array.from({ length: n }, () => 4 * r() - 2);
  return lens.map(([lt, la], i) => ({ id: `u${i}`, label: i % 3, text: u(lt * Ct), textLen: lt, audio: u(la * Ca), audioLen: la }));
}

const adamw: AdamwSettings = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
const backends: Record<string, { make: () => Promise<Backend | null>; rtol: number }> = {
  'cpu f64': { make: async () => new CpuBackend('f64'), rtol: 1e-10 },
  ort: { make: async () => OrtBackend.create({ threads: 1 }), rtol: 2e-5 },
  wgsl: { make: async () => (fx.gpu ? WgslBackend.create(fx.gpu) : null), rtol: 2e-5 },
};

describe('a batch at its own lengths computes what it computes padded to the longest', () => {
  const [Tt, Ta] = [21, 26]; // the model's longest
  // step 1: short (8 / 16), step 2: the longest, step 3: short again (views after the full set was used)
  const steps: [number, number][][] = [
    [
      [3, 9],
      [7, 16],
      [1, 2],
      [5, 11],
    ],
    [
      [21, 4],
      [2, 26],
      [9, 9],
      [13, 20],
    ],
    [
      [8, 12],
      [4, 3],
      [6, 15],
      [2, 7],
    ],
  ];
  for (const [name, bk] of Object.entries(backends)) {
    for (const fusion of ['cross-self', 'text', 'concat'] as FusionVariant[]) {
      it(`${name}, ${fusion}: losses and gradients of 3 steps (lengths ${steps
        .map((s) => batchShape(lensOf(s), [0, 1, 2, 3], 4, Tt, Ta))
        .map((s) => `${s.Tt}/${s.Ta}`)
        .join(', ')})`, async (ctx) => {
        const [b1, b2] = [await bk.make(), await bk.make()];
        if (!b1 || !b2) return ctx.skip(fx.skipReason);
        const config = tinyConfig(fusion, { width: 16, heads: 2, maxTextLen: Tt, maxAudioLen: Ta, dropout: 0.2 });
        const [full, bucketed] = [FusionModel.create(b1, config), FusionModel.create(b2, config)];
        for (const [s, lens] of steps.entries()) {
          const split = memoryFeatureSplit(utterances(lens, config.textDim, config.audioDim, 10 + s), config.textDim, config.audioDim);
          const idx = [0, 1, 2, 3];
          const shape = batchShape(split, idx, 4, Tt, Ta);
          const la = await full.readLoss(await full.trainStep(split.batch(idx, { rows: 4, Tt, Ta }), [1, 2, 0.5], adamw));
          const lb = await bucketed.readLoss(await bucketed.trainStep(split.batch(idx, shape), [1, 2, 0.5], adamw));
          expect(
            Math.abs(la - lb),
            `step ${s + 1}: loss ${la} padded to the longest vs ${lb} at ${shape.Tt}/${shape.Ta}`,
          ).toBeLessThanOrEqual(bk.rtol * Math.abs(la));
          const [ga, gb] = [await full.readGrads(), await bucketed.readGrads()];
          for (const [p, a] of ga) {
            const b = gb.get(p)!;
            let [scale, worst] = [0, 0];
            for (let i = 0; i < a.length; i++)
              [scale, worst] = [Math.max(scale, Math.abs(a[i]!)), Math.max(worst, Math.abs(a[i]! - b[i]!))];
            expect(worst, `step ${s + 1}: gradient of ${p} (max |g| ${scale})`).toBeLessThanOrEqual(bk.rtol * 10 * scale + 1e-7);
          }
        }
        await b1.destroy();
        await b2.destroy();
      });
    }
  }
});

function lensOf(lens: [number, number][]) {
  return { textLens: Int32Array.from(lens, (l) => l[0]), audioLens: Int32Array.from(lens, (l) => l[1]) };
}

describe('training on length-grouped batches resumes exactly', () => {
  const data = syntheticBimodal({
    train: 96,
    dev: 32,
    test: 8,
    textDim: 6,
    audioDim: 6,
    maxTextLen: 30,
    maxAudioLen: 40,
    signal: 3,
    seed: 9,
  });
  const opts = {
    model: { fusion: 'cross-self' as const, width: 16, heads: 2, layers: 1, ffnMult: 2, dropout: 0.1, seed: 2 },
    epochs: 2,
    batchSize: 8,
    lr: 1e-2,
    warmup: 3,
  };
  it('the data gives batches of many shapes', () => {
    const split = data.splits.train!;
    const shapes = new Set(epochBatches(lengthKeys(split, 30, 40), 8, 2, 0).map((b) => JSON.stringify(batchShape(split, b, 8, 30, 40))));
    expect(shapes.size).toBeGreaterThanOrEqual(4);
  });
  for (const kind of ['cpu', 'ort', 'wgsl'] as const) {
    it(`${kind}: stopped at step 17 of 24 and resumed, the parameters equal an uninterrupted run's exactly`, async (ctx) => {
      if (kind === 'wgsl' && !fx.gpu) return ctx.skip(fx.skipReason);
      const make = async (): Promise<Backend> =>
        kind === 'wgsl' ? WgslBackend.create(fx.gpu!) : kind === 'ort' ? OrtBackend.create({ threads: 1 }) : new CpuBackend('f32');
      const tmp = () => {
        const d = mkdtempSync(join(tmpdir(), 'emofuse-bucket-'));
        dirs.push(d);
        return d;
      };
      const straight = await train(await make(), data, { ...opts, outDir: tmp() });
      const dir = tmp();
      const first = await train(await make(), data, { ...opts, outDir: dir, stopAfterSteps: 17 });
      expect(first.steps).toBe(17);
      const resumed = await train(await make(), data, { ...opts, outDir: dir, resume: true });
      expect(resumed.steps).toBe(24);
      const [a, b] = [await straight.model.readState(), await resumed.model.readState()];
      for (const [name, s] of a) {
        for (const field of ['value', 'm', 'v'] as const) {
          const [x, y] = [s[field], b.get(name)![field]];
          const i = x.findIndex((v, j) => !Object.is(v, y[j]));
          expect(i, `${name}.${field}[${i}]: straight ${x[i]} vs resumed ${y[i]}`).toBe(-1);
        }
      }
      expect(resumed.bestDevWeightedF1).toBe(straight.bestDevWeightedF1);
    });
  }
});
