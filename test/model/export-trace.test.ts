// The ONNX export as a trace of the model's own forward (packages/model/src/export/fusion-onnx.ts): every variant,
// with and without input standardization and the linear skip, agrees with the forward on the cpu backend on batches
// of every length up to the model's (dynamic batch and lengths); the shape fit it rests on (onnx/sizes.ts) is exact
// for product-sums and refuses anything else. No CLI and no GPU: test/cli/export.test.ts covers the command.

import { describe, expect, it } from 'vitest';
import {
  CpuBackend,
  FUSION_VARIANTS,
  FusionModel,
  checkOnnxAgainstModel,
  fusionToOnnx,
  randomFeatureBatches,
  type CheckpointMeta,
  type FusionVariant,
  type InputNorm,
} from '@emofuse/model';
import { fitSizes, gridCorners } from '../../packages/model/src/onnx/sizes.ts';
import { tinyConfig } from './helpers.ts';

const TOL = 1e-3; // export.test.ts's bound on |logit_onnx - logit_ours|

/** Seeded statistics of the right widths (means in [-0.5, 0.5], stds in [0.5, 1.5]). */
function someNorm(model: FusionModel): InputNorm {
  const c = model.config;
  const st = (n: number, k: number) => ({
    mean: Float32Array.from({ length: n }, (_, i) => Math.sin(i + k) / 2),
    std: Float32Array.from({ length: n }, (_, i) => 1 + Math.cos(3 * i + k) / 2),
  });
  const norm: InputNorm = { text: st(c.textDim, 1), audio: st(c.audioDim, 2) };
  if (model.pooledNormWidth) norm.pooled = st(model.pooledNormWidth, 3);
  return norm;
}

describe('export: the traced forward agrees with the model', () => {
  const cases = [...FUSION_VARIANTS.map((v) => [v, false] as const), ['cross-self', true] as const, ['audio', true] as const];
  it.each(cases)('%s (linear skip %s), standardized inputs', async (fusion: FusionVariant, linearSkip: boolean) => {
    const config = tinyConfig(fusion, { width: 8, heads: 2, layers: 2, maxTextLen: 4, maxAudioLen: 7, linearSkip });
    const model = FusionModel.create(new CpuBackend('f32'), config);
    const state = await model.readState();
    // not the init: biases, gains and positions all away from 0 / 1
    model.loadState(new Map([...state].map(([n, s]) => [n, { value: s.value.map((x, i) => x + 0.1 * Math.sin(i + n.length)) }])), 0);
    model.setInputNorm(someNorm(model));
    const params = new Map([...(await model.readState())].map(([n, s]) => [n, { shape: s.shape, data: s.value }]));
    const meta: CheckpointMeta = {
      format: 1,
      config,
      classNames: ['a', 'b', 'c'],
      step: 0,
      textEncoder: 't',
      audioEncoder: 'a',
      metrics: {},
      train: {},
    };
    const onnx = await fusionToOnnx(meta, params, { norm: model.inputNorm });
    const check = await checkOnnxAgainstModel(onnx, model, randomFeatureBatches(config, 3, 4, 5));
    expect(check.utterances).toBe(12);
    expect(check.maxAbsLogits).toBeLessThanOrEqual(TOL);
    expect(check.argmaxDisagreements).toBe(0);
  });
});

describe('shape numbers fitted as product-sums of the sizes', () => {
  const corners = gridCorners({ B: [2, 3], Tt: [5, 6], Ta: [9, 10] });
  const check = { B: 4, Tt: 8, Ta: 13 };
  it('recovers B*Tt*C, Tt + Ta, B*(Tt + Ta)*C, constants and B*Tt*Ta exactly', () => {
    const f = (p: Record<string, number>) => [p.B! * p.Tt! * 16, p.Tt! + p.Ta!, p.B! * (p.Tt! + p.Ta!) * 16, 7, p.B! * p.Tt! * p.Ta!];
    const polys = fitSizes(['B', 'Tt', 'Ta'], corners, f, check, (i) => `number ${i}`);
    expect(polys.map((p) => Object.fromEntries(p))).toEqual([
      { 'B*Tt': 16 },
      { Tt: 1, Ta: 1 },
      { 'B*Tt': 16, 'B*Ta': 16 },
      { '': 7 },
      { 'B*Tt*Ta': 1 },
    ]);
  });
  it('refuses a number that is no product-sum (a square), naming it', () => {
    expect(() =>
      fitSizes(
        ['B', 'Tt', 'Ta'],
        corners,
        (p) => [p.B!, p.Tt! * p.Tt!],
        check,
        (i) => `number ${i}`,
      ),
    ).toThrow(/number 1 is not a product-sum of B, Tt, Ta/);
  });
});
