// The same tiny fusion model trained a few steps on the wgsl backend (our kernels on the adapter) and on the cpu
// backend (float64 references, float32 storage) from the same seed: losses and every parameter agree.
//
// Tolerances: each step's loss within LOSS_RTOL; after STEPS AdamW steps every parameter within PARAM_ATOL. The
// two backends differ only by f32 rounding inside the kernels (~1e-6 relative per op); AdamW divides the gradient
// by its running RMS, so a gradient that is pure rounding noise (~1e-7) can still move a parameter by up to lr
// per step in either direction (the key bias, whose true gradient is exactly 0 because softmax ignores a constant
// added to every score, is such a case): PARAM_ATOL = STEPS * LR bounds that worst case, and MEAN_ATOL (the mean absolute
// difference over all parameters, which noise cannot push up) is 100x tighter.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend, FUSION_VARIANTS, FusionModel, WgslBackend, type AdamwSettings } from '@emofuse/model';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';
import { expectTrainsLikeCpu, tinyConfig, tinyInputs } from './helpers.ts';

const STEPS = 3;
const LR = 1e-3;
const LOSS_RTOL = 1e-4;
const PARAM_ATOL = STEPS * LR;
const MEAN_ATOL = 1e-5;
const adamw: AdamwSettings = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

let fx: GpuFixture;
beforeAll(async () => {
  fx = await openGpu();
});
afterAll(async () => {
  await fx.gpu?.destroy();
});

describe('wgsl and cpu backends train the same model to the same numbers', () => {
  // every variant, and the paper's with dropout inside its blocks too
  const cases = [
    ...FUSION_VARIANTS.map((fusion) => ({ fusion, blockDropout: 0, linearSkip: false })),
    { fusion: 'cross-self' as const, blockDropout: 0.2, linearSkip: false },
    { fusion: 'cross-self' as const, blockDropout: 0, linearSkip: true },
    // whole modalities absent in some rows (mixed-corpus training): fully masked attention rows both ways
    ...(['cross-self', 'gate', 'linear'] as const).map((fusion) => ({ fusion, blockDropout: 0, linearSkip: true, missing: true })),
  ];
  for (const { fusion, blockDropout, linearSkip, missing } of cases as {
    fusion: (typeof cases)[number]['fusion'];
    blockDropout: number;
    linearSkip: boolean;
    missing?: boolean;
  }[]) {
    const what = `${fusion}${
      blockDropout ? `, block dropout ${blockDropout}` : ''
    }${linearSkip ? ', linear skip' : ''}${missing ? ', modalities missing' : ''}`;
    it(`${what}: ${STEPS} steps, losses and parameters agree`, async (ctx) => {
      if (!fx.gpu) return ctx.skip(fx.skipReason);
      const config = tinyConfig(fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2, blockDropout, linearSkip });
      const gpuModel = FusionModel.create(await WgslBackend.create(fx.gpu), config);
      const cpuModel = FusionModel.create(new CpuBackend('f32'), config);
      const r = await expectTrainsLikeCpu('wgsl', gpuModel, cpuModel, adamw, {
        steps: STEPS,
        lossRtol: LOSS_RTOL,
        paramAtol: PARAM_ATOL,
        meanAtol: MEAN_ATOL,
        missingModalities: missing,
      });
      console.log(`${what}: max |dp| ${r.worst.toExponential(2)} (${r.worstName}), mean ${r.mean.toExponential(2)}`);
    });
  }
});

describe('a wgsl training step', () => {
  it('reads nothing back from the device until the loss is asked for', async (ctx) => {
    if (!fx.gpu) return ctx.skip(fx.skipReason);
    const gpu = fx.gpu;
    const config = tinyConfig('cross-self', { width: 16, heads: 2 });
    const model = FusionModel.create(await WgslBackend.create(gpu), config);
    const original = gpu.read.bind(gpu);
    let reads = 0;
    gpu.read = async (t) => {
      reads++;
      return original(t);
    };
    try {
      const acts = await model.trainStep(tinyInputs(config, 4, 1), [1, 1, 1], adamw);
      await model.trainStep(tinyInputs(config, 4, 2), [1, 1, 1], adamw);
      expect(reads).toBe(0);
      expect(Number.isFinite(await model.readLoss(acts))).toBe(true);
      expect(reads).toBe(1);
    } finally {
      gpu.read = original;
    }
  });
});
