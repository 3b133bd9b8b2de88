// The ort backend (onnxruntime-node CPU, packages/model/src/fusion/backend-ort.ts) against the float64 references:
// its ops one line each (./ort-ops.ts, including the layouts and cases the fusion model does not use), then the
// whole model trained a few steps beside the cpu backend with backends.test.ts's rule, then an exact resume.
// The op-by-op runner (a bench baseline now) has the same cases in test/bench/ort-op-by-op.test.ts.

import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend, FUSION_VARIANTS, FusionModel, OrtBackend, chooseAutoBackend, ortLoadError, type AdamwSettings } from '@emofuse/model';
import { expectTrainsLikeCpu, tinyConfig, tinyInputs } from './helpers.ts';
import { describeOrtOps } from './ort-ops.ts';

// backends.test.ts's rule (see its header for why these numbers)
const STEPS = 3;
const LR = 1e-3;
const LOSS_RTOL = 1e-4;
const PARAM_ATOL = STEPS * LR;
const MEAN_ATOL = 1e-5;
const adamw: AdamwSettings = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

const be = OrtBackend.create();
afterAll(() => be.destroy());

describeOrtOps(', recorded into one graph', be);

describe('ort and cpu backends train the same model to the same numbers', () => {
  for (const fusion of FUSION_VARIANTS) {
    it(`${fusion}: ${STEPS} steps, losses and parameters agree`, async () => {
      const config = tinyConfig(fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
      const ortModel = FusionModel.create(be, config);
      const cpuModel = FusionModel.create(new CpuBackend('f32'), config);
      await expectTrainsLikeCpu('ort', ortModel, cpuModel, adamw, {
        steps: STEPS,
        lossRtol: LOSS_RTOL,
        paramAtol: PARAM_ATOL,
        meanAtol: MEAN_ATOL,
      });
    });
  }
  // whole modalities absent in some rows (mixed-corpus training): fully masked attention rows both ways
  for (const fusion of ['cross-self', 'gate', 'linear'] as const) {
    it(`${fusion}, linear skip, modalities missing: ${STEPS} steps, losses and parameters agree`, async () => {
      const config = tinyConfig(fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2, linearSkip: true });
      const ortModel = FusionModel.create(be, config);
      const cpuModel = FusionModel.create(new CpuBackend('f32'), config);
      const t = { steps: STEPS, lossRtol: LOSS_RTOL, paramAtol: PARAM_ATOL, meanAtol: MEAN_ATOL, missingModalities: true };
      await expectTrainsLikeCpu('ort', ortModel, cpuModel, adamw, t);
    });
  }
});

describe('a step recorded as one graph', () => {
  it('activations are scratch: not brought out, and reading one after its step throws instead of returning old numbers', async () => {
    const b = OrtBackend.create();
    const x = b.upload([1, 2, 3], [3]);
    const act = b.zeros([3]);
    const kept = b.zeros([3]);
    b.scratch([act]);
    await b.add(x, x, act);
    await b.add(act, x, kept);
    expect(Array.from(await b.read(kept))).toEqual([3, 6, 9]);
    await expect(b.read(act)).rejects.toThrow(/scratch of a step that has run/);
    await expect((async () => (await b.add(act, x, kept), b.flush()))()).rejects.toThrow(/reads scratch values from before the last flush/);
    b.write(act, [1, 1, 1]); // the host's values are current again
    await b.add(act, x, kept);
    expect(Array.from(await b.read(kept))).toEqual([2, 3, 4]);
    await b.destroy();
  });
  it('regions: a view written then the whole read, a host write while a graph is pending keeps what the graph read', async () => {
    const b = OrtBackend.create();
    const base = b.upload([10, 20, 30, 40], [4]);
    const head = b.view(base, [2]);
    const src = b.upload([1, 2], [2]);
    await b.add(src, src, head); // base = [2, 4, 30, 40], pending
    const sum = b.zeros([4]);
    await b.add(base, base, sum);
    const tail = b.upload([5, 6], [2]);
    const out = b.zeros([2]);
    await b.add(tail, tail, out); // reads tail: [5, 6]
    b.write(tail, [0, 0]); // after the graph read it: the graph still sees [5, 6]
    expect(Array.from(await b.read(sum))).toEqual([4, 8, 60, 80]);
    expect(Array.from(await b.read(out))).toEqual([10, 12]);
    expect(Array.from(await b.read(base))).toEqual([2, 4, 30, 40]);
    const w = b.zeros([2]);
    await b.add(src, src, w);
    b.write(w, [7, 7]); // the host writes over what the pending graph would write: the host wins
    await b.flush();
    expect(Array.from(await b.read(w))).toEqual([7, 7]);
    await b.destroy();
  });
});

describe('ort training resumes exactly', () => {
  it('2 steps, save, load into a fresh model, 2 more steps == 4 steps straight', async () => {
    const config = tinyConfig('cross-self', { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
    const weights = [1, 1.5, 0.75];
    const batch = (s: number) => tinyInputs(config, 4, 200 + s);
    const straight = FusionModel.create(be, config);
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push(await straight.readLoss(await straight.trainStep(batch(s), weights, adamw)));
    const first = FusionModel.create(be, config);
    for (let s = 0; s < 2; s++) await first.trainStep(batch(s), weights, adamw);
    const resumed = FusionModel.create(OrtBackend.create(), config); // a fresh backend too: nothing carried over but the state
    resumed.loadState(await first.readState(), first.step);
    const after: number[] = [];
    for (let s = 2; s < 4; s++) after.push(await resumed.readLoss(await resumed.trainStep(batch(s), weights, adamw)));
    expect(after).toEqual(losses.slice(2));
    const a = await straight.readState();
    const b = await resumed.readState();
    for (const [name, p] of a) {
      expect(Array.from(b.get(name)!.value), name).toEqual(Array.from(p.value));
      expect(Array.from(b.get(name)!.v), `${name} v`).toEqual(Array.from(p.v));
    }
  });
});

describe('--backend auto', () => {
  const sw = { isSoftware: true, device: 'llvmpipe-llvm-15', description: 'OpenGL ES 3.2 Mesa' };
  const hw = { isSoftware: false, device: 'NVIDIA H100', description: '' };
  it('wgsl on a hardware adapter, ort on a software one or none, wgsl without onnxruntime', () => {
    expect(chooseAutoBackend(hw, null)).toMatchObject({ backend: 'wgsl', reason: expect.stringContaining('NVIDIA H100') });
    expect(chooseAutoBackend(sw, null)).toMatchObject({ backend: 'ort', reason: expect.stringContaining('software adapter llvmpipe') });
    expect(chooseAutoBackend(null, null, 'no adapter: Vulkan missing').backend).toBe('ort');
    expect(chooseAutoBackend(sw, 'onnxruntime-node could not be loaded: x')).toMatchObject({
      backend: 'wgsl',
      reason: expect.stringContaining('could not be loaded'),
    });
    expect(() => chooseAutoBackend(null, 'onnxruntime-node could not be loaded: x')).toThrow(/--backend cpu/);
    expect(ortLoadError()).toBeNull();
  });
});
