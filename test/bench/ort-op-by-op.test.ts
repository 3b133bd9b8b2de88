// The ort backend run op by op (packages/bench/src/baselines/ort-op-by-op.ts, `bench train`'s baseline and the
// per-op profile's backend): the same op cases as the product (../model/ort-ops.ts) in chunks of 5 elements, so
// every chunked op loops with a ragged last chunk; the model trained beside the cpu backend with backends.test.ts's
// rule; and the product's one graph a step against it.

import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend, FusionModel, OrtBackend, type AdamwSettings } from '@emofuse/model';
import { OrtOpByOp } from '../../packages/bench/src/baselines/ort-op-by-op.ts';
import { expectTrainsLikeCpu, tinyConfig, tinyInputs } from '../model/helpers.ts';
import { describeOrtOps } from '../model/ort-ops.ts';

// backends.test.ts's rule (see its header for why these numbers)
const STEPS = 3;
const LR = 1e-3;
const adamw: AdamwSettings = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

/**
 * Op by op, in chunks of 5 elements: the chunked ops (GELU backward, add, matmul, attention by batch rows) loop, with a ragged last chunk.
 */
const beChunked = OrtOpByOp.create({ chunk: 5 });
afterAll(() => beChunked.destroy());

describeOrtOps(', op by op in chunks of 5', beChunked);

describe('ort op by op and cpu backends train the same model to the same numbers', () => {
  it(`cross-self (op by op, in chunks of 5): ${STEPS} steps, losses and parameters agree`, async () => {
    const config = tinyConfig('cross-self', { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
    const ortModel = FusionModel.create(beChunked, config);
    const cpuModel = FusionModel.create(new CpuBackend('f32'), config);
    await expectTrainsLikeCpu('ort', ortModel, cpuModel, adamw, { steps: STEPS, lossRtol: 1e-4, paramAtol: STEPS * LR, meanAtol: 1e-5 });
  });
});

describe('a step recorded as one graph, against op by op', () => {
  const config = tinyConfig('cross-self', { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
  it('runs once a step, one compiled graph for every batch shape, the same numbers as op by op', async () => {
    const one = OrtBackend.create();
    const eager = OrtOpByOp.create();
    const [m1, m2] = [FusionModel.create(one, config), FusionModel.create(eager, config)];
    for (let s = 0; s < 4; s++) {
      const b = tinyInputs(config, s % 2 ? 3 : 4, 300 + s); // two batch sizes (tinyInputs pads to the model's lengths)
      const runs = one.runs;
      const [l1, l2] = [
        await m1.readLoss(await m1.trainStep(b, [1, 1, 1], adamw)),
        await m2.readLoss(await m2.trainStep(b, [1, 1, 1], adamw)),
      ];
      expect(one.runs - runs).toBe(1);
      expect(Math.abs(l1 - l2)).toBeLessThanOrEqual(1e-5 * Math.abs(l2));
    }
    expect(eager.runs).toBeGreaterThan(4 * 50);
    const steps = [...(one as unknown as { sessions: Map<string, unknown> }).sessions.keys()].filter((k) => k.startsWith('step:'));
    expect(steps).toHaveLength(1);
    await Promise.all([one.destroy(), eager.destroy()]);
  });
});
