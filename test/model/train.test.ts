// The training loop on the wgsl backend (our kernels): a tiny model learns the generated bimodal task (loss far
// below chance), and an interrupted run resumed from its checkpoint ends bit-for-bit where an uninterrupted one does.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend, WgslBackend, syntheticBimodal, train, type Backend, type TrainOptions } from '@emofuse/model';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';

let fx: GpuFixture;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'emofuse-train-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  fx = await openGpu();
});
afterAll(async () => {
  await fx.gpu?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const data = syntheticBimodal({
  train: 192,
  dev: 64,
  test: 32,
  textDim: 8,
  audioDim: 8,
  maxTextLen: 6,
  maxAudioLen: 8,
  signal: 3,
  seed: 3,
});
const base: Omit<TrainOptions, 'outDir'> = {
  model: { fusion: 'cross-self', width: 16, heads: 2, layers: 1, ffnMult: 2, dropout: 0.1, seed: 5 },
  epochs: 8,
  batchSize: 16,
  lr: 1e-2,
  warmup: 4,
  classWeights: 'inverse',
};

describe('training on the wgsl backend', () => {
  it('the loss of a tiny model on a learnable bimodal task falls far below chance (ln 4 = 1.386)', async (ctx) => {
    if (!fx.gpu) return ctx.skip(fx.skipReason);
    const be = await WgslBackend.create(fx.gpu);
    const losses: number[] = [];
    const out = tmp();
    const r = await train(be, data, { ...base, outDir: out, onStep: (s) => losses.push(s.loss) });
    const first = losses[0]!;
    const last = losses.slice(-12).reduce((a, b) => a + b, 0) / 12;
    console.log(
      `loss: first step ${first.toFixed(3)}, mean of last epoch ${last.toFixed(3)}; best dev weighted F1 ${r.bestDevWeightedF1.toFixed(3)}`,
    );
    expect(first).toBeGreaterThan(1.0); // near chance at initialisation
    expect(last).toBeLessThan(0.3); // far below chance
    expect(r.bestDevWeightedF1).toBeGreaterThan(0.9); // and it generalises: either modality alone caps near 0.5
    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log).toHaveLength(8);
    expect(log[0]).toMatchObject({ epoch: 1, step: 12 });
  });

  for (const kind of ['wgsl', 'cpu'] as const) {
    it(`${kind}: stopped at step 18 of 24 and resumed, the parameters equal an uninterrupted run's exactly`, async (ctx) => {
      if (kind === 'wgsl' && !fx.gpu) return ctx.skip(fx.skipReason);
      const make = async (): Promise<Backend> => (kind === 'wgsl' ? WgslBackend.create(fx.gpu!) : new CpuBackend('f32'));
      const opts = { ...base, epochs: 2 }; // 12 steps per epoch: the stop at 18 falls mid-epoch 2
      const straight = await train(await make(), data, { ...opts, outDir: tmp() });
      const dir = tmp();
      const first = await train(await make(), data, { ...opts, outDir: dir, stopAfterSteps: 18 });
      expect(first.interrupted).toBe(true);
      expect(first.steps).toBe(18);
      const resumed = await train(await make(), data, { ...opts, outDir: dir, resume: true });
      expect(resumed.steps).toBe(24);
      const a = await straight.model.readState();
      const b = await resumed.model.readState();
      let compared = 0;
      for (const [name, s] of a) {
        const t = b.get(name)!;
        for (const field of ['value', 'm', 'v'] as const) {
          const x = s[field];
          const y = t[field];
          const i = x.findIndex((v, j) => !Object.is(v, y[j]));
          expect(i, `${name}.${field}[${i}]: straight ${x[i]} vs resumed ${y[i]}`).toBe(-1);
          compared += x.length;
        }
      }
      expect(compared).toBeGreaterThan(1000);
      expect(resumed.bestDevWeightedF1).toBe(straight.bestDevWeightedF1);
    });
  }
});
