import { afterAll, describe, expect, it } from 'vitest';
import { layerNormBackward, layerNormForward, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`layer-norm on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  /** Forward and backward on GPU vs the float64 reference; the backward reads the reference mean/rstd (as f32). */
  async function check(R: number, C: number, seed: number, eps = 1e-5) {
    const xs = randomF32(R * C, seed);
    for (let r = 0; r < R; r += 2) for (let c = 0; c < C; c++) xs[r * C + c] = xs[r * C + c]! * 3 + 5; // offset rows: mean far from 0
    const gs = randomF32(C, seed + 1);
    const bs = randomF32(C, seed + 2);
    const dys = randomF32(R * C, seed + 3);
    const x = gpu.upload(xs, [R, C]);
    const gamma = gpu.upload(gs);
    const y = gpu.empty([R, C]);
    const mean = gpu.empty([R]);
    const rstd = gpu.empty([R]);
    for (const t of [y, mean, rstd]) gpu.poison(t);
    await layerNormForward(gpu, x, gamma, gpu.upload(bs), y, mean, rstd, eps);
    const f = ref.layerNormForward(xs, gs, bs, R, C, eps);
    const label = `R=${R} C=${C}`;
    expectClose(await gpu.read(y), f.y, TOL.layerNorm, { name: `layer-norm.fwd y ${label}`, shape: [R, C] });
    expectClose(await gpu.read(mean), f.mean, TOL.layerNorm, { name: `layer-norm.fwd mean ${label}`, shape: [R] });
    expectClose(await gpu.read(rstd), f.rstd, TOL.layerNorm, { name: `layer-norm.fwd rstd ${label}`, shape: [R] });

    const mean32 = Float32Array.from(f.mean);
    const rstd32 = Float32Array.from(f.rstd);
    const dx = gpu.empty([R, C]);
    const dgamma = gpu.empty([C]);
    const dbeta = gpu.empty([C]);
    for (const t of [dx, dgamma, dbeta]) gpu.poison(t);
    await layerNormBackward(gpu, x, gamma, gpu.upload(mean32), gpu.upload(rstd32), gpu.upload(dys, [R, C]), dx, dgamma, dbeta);
    const b = ref.layerNormBackward(xs, gs, mean32, rstd32, dys, R, C);
    const dxGpu = await gpu.read(dx);
    expectClose(dxGpu, b.dx, TOL.layerNormBackward, { name: `layer-norm.bwd dx ${label}`, shape: [R, C] });
    expectClose(await gpu.read(dgamma), b.dgamma, TOL.layerNormBackward, { name: `layer-norm.bwd.dgamma dgamma ${label}`, shape: [C] });
    expectClose(await gpu.read(dbeta), b.dbeta, TOL.layerNormBackward, { name: `layer-norm.bwd.dgamma dbeta ${label}`, shape: [C] });
    return { y: await gpu.read(y), dx: dxGpu, bs };
  }

  // R and C from {1, 7, 63, 65, 129, 768}: not multiples of WG (64) rows or columns.
  const shapes: Array<[number, number]> = [
    [1, 1],
    [7, 7],
    [63, 65],
    [65, 63],
    [129, 129],
    [1, 768],
    [7, 768],
    [768, 7],
    [129, 768],
    [768, 65],
  ];
  it.each(shapes)('forward and backward, R=%i C=%i', async (R, C) => {
    await check(R, C, R * 13 + C);
  });

  it('C = 1: y = beta, dx = 0', async () => {
    const R = 65;
    const { y, dx, bs } = await check(R, 1, 77);
    for (let r = 0; r < R; r++) {
      expect(y[r]).toBe(bs[0]);
      expect(Math.abs(dx[r]!)).toBe(0);
    }
  });

  it('a larger eps is honoured', async () => {
    await check(7, 63, 5, 0.5);
  });

  it('backward accumulates into dgamma and dbeta, overwrites dx', async () => {
    const R = 65;
    const C = 129;
    const xs = randomF32(R * C, 1);
    const gs = randomF32(C, 2);
    const dys = randomF32(R * C, 3);
    const f = ref.layerNormForward(xs, gs, new Float32Array(C), R, C);
    const mean32 = Float32Array.from(f.mean);
    const rstd32 = Float32Array.from(f.rstd);
    const priorG = randomF32(C, 4);
    const priorB = randomF32(C, 5);
    const dx = gpu.upload(randomF32(R * C, 6), [R, C]); // garbage that must be overwritten
    const dgamma = gpu.upload(priorG);
    const dbeta = gpu.upload(priorB);
    await layerNormBackward(
      gpu,
      gpu.upload(xs, [R, C]),
      gpu.upload(gs),
      gpu.upload(mean32),
      gpu.upload(rstd32),
      gpu.upload(dys, [R, C]),
      dx,
      dgamma,
      dbeta,
      true,
    );
    const b = ref.layerNormBackward(xs, gs, mean32, rstd32, dys, R, C);
    expectClose(await gpu.read(dx), b.dx, TOL.layerNormBackward, { name: 'layer-norm.bwd dx (accumulate run)', shape: [R, C] });
    expectClose(
      await gpu.read(dgamma),
      b.dgamma.map((v, i) => v + priorG[i]!),
      TOL.layerNormBackward,
      { name: 'layer-norm.bwd.dgamma dgamma accumulate', shape: [C] },
    );
    expectClose(
      await gpu.read(dbeta),
      b.dbeta.map((v, i) => v + priorB[i]!),
      TOL.layerNormBackward,
      { name: 'layer-norm.bwd.dgamma dbeta accumulate', shape: [C] },
    );
  });

  it('rejects mismatched shapes before dispatch', async () => {
    const x = gpu.empty([4, 8]);
    const c8 = () => gpu.empty([8]);
    await expect(layerNormForward(gpu, x, gpu.empty([7]), c8(), gpu.empty([4, 8]), gpu.empty([4]), gpu.empty([4]))).rejects.toThrow(
      /layer-norm\.fwd.*gamma must have shape \[8\]/,
    );
    await expect(layerNormForward(gpu, x, c8(), c8(), gpu.empty([4, 8]), gpu.empty([3]), gpu.empty([4]))).rejects.toThrow(
      /mean must have 4 elements/,
    );
    await expect(
      layerNormBackward(gpu, x, c8(), gpu.empty([4]), gpu.empty([4]), gpu.empty([4, 8]), gpu.empty([4, 8]), gpu.empty([4]), c8()),
    ).rejects.toThrow(/layer-norm\.bwd.*dgamma must have shape \[8\]/);
  });
});
