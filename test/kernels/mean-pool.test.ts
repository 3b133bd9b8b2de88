import { afterAll, describe, expect, it } from 'vitest';
import { meanPoolBackward, meanPoolForward, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { lengthMask, randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`mean-pool on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  // B*C not a multiple of the workgroup (256); row 0 fully masked, row 1 keeps one step, the rest varied.
  it.each([
    [1, 1, 1],
    [2, 7, 7],
    [3, 63, 65],
    [4, 65, 129],
    [5, 33, 300],
  ])('forward and backward, B=%i T=%i C=%i', async (B, T, C) => {
    const lengths = Array.from({ length: B }, (_, b) => (b === 0 && B > 1 ? 0 : b === 1 ? 1 : Math.max(1, T - 3 * b)));
    const ms = lengthMask(lengths, T);
    const xs = randomF32(B * T * C, B * 1000 + T);
    const dys = randomF32(B * C, C);
    const x = gpu.upload(xs, [B, T, C]);
    const mask = gpu.upload(ms, [B, T]);
    const y = gpu.empty([B, C]);
    const dx = gpu.empty([B, T, C]);
    gpu.poison(y);
    gpu.poison(dx);
    await meanPoolForward(gpu, x, mask, y);
    await meanPoolBackward(gpu, mask, gpu.upload(dys, [B, C]), dx);
    const ys = await gpu.read(y);
    const dxs = await gpu.read(dx);
    expectClose(ys, ref.meanPoolForward(xs, ms, B, T, C), TOL.meanPool, { name: 'mean-pool.fwd y', shape: [B, C] });
    expectClose(dxs, ref.meanPoolBackward(ms, dys, B, T, C), TOL.meanPool, { name: 'mean-pool.bwd dx', shape: [B, T, C] });
    if (lengths[0] === 0) {
      // The fully masked row: output and gradient exactly zero.
      expect(ys.subarray(0, C).every((v) => v === 0)).toBe(true);
      expect(dxs.subarray(0, T * C).every((v) => v === 0)).toBe(true);
    }
  });

  it('an interior (non-prefix) mask and the accumulate flag', async () => {
    const [B, T, C] = [2, 9, 5];
    const ms = Float32Array.from({ length: B * T }, (_, i) => (i % 3 === 1 ? 0 : 1));
    const xs = randomF32(B * T * C, 1);
    const dys = randomF32(B * C, 2);
    const prior = randomF32(B * T * C, 3);
    const mask = gpu.upload(ms, [B, T]);
    const y = gpu.empty([B, C]);
    gpu.poison(y);
    const dx = gpu.upload(prior, [B, T, C]);
    await meanPoolForward(gpu, gpu.upload(xs, [B, T, C]), mask, y);
    await meanPoolBackward(gpu, mask, gpu.upload(dys, [B, C]), dx, true);
    expectClose(await gpu.read(y), ref.meanPoolForward(xs, ms, B, T, C), TOL.meanPool, { name: 'mean-pool.fwd interior mask' });
    const expected = ref.meanPoolBackward(ms, dys, B, T, C).map((v, i) => v + prior[i]!);
    expectClose(await gpu.read(dx), expected, TOL.meanPool, { name: 'mean-pool.bwd accumulate' });
  });

  it('rejects mismatched shapes before dispatch', async () => {
    const x = gpu.empty([2, 3, 4]);
    await expect(meanPoolForward(gpu, x, gpu.empty([2, 4]), gpu.empty([2, 4]))).rejects.toThrow(
      /mean-pool\.fwd.*mask must have shape \[2, 3\]/,
    );
    await expect(meanPoolForward(gpu, x, gpu.empty([2, 3]), gpu.empty([2, 3]))).rejects.toThrow(/y must have shape \[2, 4\]/);
    await expect(meanPoolForward(gpu, gpu.empty([6, 4]), gpu.empty([2, 3]), gpu.empty([2, 4]))).rejects.toThrow(/x must be 3-D/);
    await expect(meanPoolBackward(gpu, gpu.empty([2, 3]), gpu.empty([2, 5]), x)).rejects.toThrow(
      /mean-pool\.bwd.*dy must have shape \[2, 4\]/,
    );
  });
});
