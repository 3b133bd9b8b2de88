import { afterAll, describe, expect, it } from 'vitest';
import { adamwStep, ref, type Gpu } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

const HYPER = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

describe('adamw reference (PyTorch formula)', () => {
  it('first step without weight decay moves every parameter by lr * sign(g)', () => {
    // m_hat = g, v_hat = g^2 after one step, so the update is lr * g / (|g| + eps).
    const g = [0.5, -2, 1e-3];
    const r = ref.adamwStep([1, 1, 1], g, [0, 0, 0], [0, 0, 0], { ...HYPER, weightDecay: 0, step: 1 });
    for (const [i, p] of r.p.entries()) expect(p).toBeCloseTo(1 - HYPER.lr * Math.sign(g[i]!), 5);
  });

  it('decoupled weight decay shrinks p by lr * wd * p independently of the gradient', () => {
    const r = ref.adamwStep([2], [0], [0], [0], { ...HYPER, step: 3 });
    expect(r.p[0]).toBeCloseTo(2 * (1 - HYPER.lr * HYPER.weightDecay), 14);
  });

  it('clip coefficient is min(1, maxNorm / (norm + 1e-6)) times gradScale', () => {
    expect(ref.adamwGradScale({ maxNorm: 1, gradNorm: 4 })).toBeCloseTo(1 / (4 + 1e-6), 14);
    expect(ref.adamwGradScale({ maxNorm: 10, gradNorm: 4, gradScale: 0.5 })).toBe(0.5);
  });
});

async function stepsOnGpu(
  gpu: Gpu,
  n: number,
  steps: number,
  seed: number,
  extra: { gradScale?: number; maxNorm?: number; norm?: number } = {},
) {
  const p0 = randomF32(n, seed);
  const grads = Array.from({ length: steps }, (_, s) => randomF32(n, seed + 100 + s));
  const p = gpu.upload(p0);
  const m = gpu.zeros([n]);
  const v = gpu.zeros([n]);
  const g = gpu.empty([n]);
  const norm = extra.norm !== undefined ? gpu.upload([extra.norm]) : undefined;
  let r: ReturnType<typeof ref.adamwStep> = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
  for (let s = 1; s <= steps; s++) {
    gpu.write(g, grads[s - 1]!);
    await adamwStep(gpu, p, g, m, v, {
      ...HYPER,
      step: s,
      gradScale: extra.gradScale,
      clip: norm && extra.maxNorm !== undefined ? { norm, maxNorm: extra.maxNorm } : undefined,
    });
    await gpu.flush(); // g is rewritten before the next step
    r = ref.adamwStep(r.p, grads[s - 1]!, r.m, r.v, {
      ...HYPER,
      step: s,
      gradScale: extra.gradScale,
      maxNorm: extra.maxNorm,
      gradNorm: extra.norm,
    });
  }
  return { got: { p: await gpu.read(p), m: await gpu.read(m), v: await gpu.read(v) }, want: r, p0 };
}

describe.skipIf(!fx.gpu)(`adamw on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  // n not a multiple of 4 nor of the workgroup (256).
  it.each([1, 7, 63, 65, 129, 4099])('5 steps match the reference, n=%i', async (n) => {
    const { got, want, p0 } = await stepsOnGpu(gpu, n, 5, n);
    expectClose(got.p, want.p, TOL.adamw, { name: `adamw p n=${n}` });
    expectClose(got.m, want.m, TOL.adamw, { name: `adamw m n=${n}` });
    expectClose(got.v, want.v, TOL.adamw, { name: `adamw v n=${n}` });
    // The parameters did move (by ~lr per step), so the comparison is not of unchanged buffers.
    expect(Math.max(...got.p.map((v, i) => Math.abs(v - p0[i]!)))).toBeGreaterThan(1e-3);
  });

  it('clips by a norm on the GPU (scale below 1) and applies gradScale', async () => {
    const n = 129;
    const clipped = await stepsOnGpu(gpu, n, 3, 11, { maxNorm: 1, norm: 25 });
    expectClose(clipped.got.p, clipped.want.p, TOL.adamw, { name: 'adamw p clipped' });
    expectClose(clipped.got.m, clipped.want.m, TOL.adamw, { name: 'adamw m clipped' });
    expectClose(clipped.got.v, clipped.want.v, TOL.adamw, { name: 'adamw v clipped' });
    // Norm under maxNorm: no clipping, but gradScale 0.5 still applies.
    const scaled = await stepsOnGpu(gpu, n, 2, 12, { maxNorm: 100, norm: 25, gradScale: 0.5 });
    expectClose(scaled.got.m, scaled.want.m, TOL.adamw, { name: 'adamw m gradScale' });
    expectClose(scaled.got.p, scaled.want.p, TOL.adamw, { name: 'adamw p gradScale' });
    // The clip is visible: |g| <= 2 becomes <= 2/25 = 0.08, so |m| stays under 0.08 (unclipped it reaches ~0.5).
    const mMax = Math.max(...clipped.got.m.map(Math.abs));
    expect(mMax).toBeLessThan(0.08);
    expect(mMax).toBeGreaterThan(0.01);
  });

  it('rejects bad sizes and hyperparameters before dispatch', async () => {
    const t = () => gpu.empty([5]);
    const p = t();
    await expect(adamwStep(gpu, p, gpu.empty([4]), t(), t(), { lr: 1e-3, step: 1 })).rejects.toThrow(/adamw\.fwd.*g must have 5 elements/);
    await expect(adamwStep(gpu, p, t(), t(), t(), { lr: 1e-3, step: 0 })).rejects.toThrow(/step must be a positive integer/);
    await expect(adamwStep(gpu, p, t(), t(), t(), { lr: 1e-3, step: 1, beta2: 1 })).rejects.toThrow(/beta2 must lie in \[0, 1\)/);
    await expect(adamwStep(gpu, p, t(), p, t(), { lr: 1e-3, step: 1 })).rejects.toThrow(/same buffer/);
    await expect(adamwStep(gpu, p, t(), t(), t(), { lr: 1e-3, step: 1, clip: { norm: gpu.empty([1]), maxNorm: 0 } })).rejects.toThrow(
      /maxNorm/,
    );
  });
});
