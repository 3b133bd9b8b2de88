import { afterAll, describe, expect, it } from 'vitest';
import { dropoutBackward, dropoutForward, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

/** randomF32 in [-2, 2] with no exact zeros, so y == 0 on the GPU means "dropped". */
function nonzero(n: number, seed: number): Float32Array {
  return randomF32(n, seed).map((v) => (v === 0 ? 1 : v));
}

function expectSameMask(y: Float32Array, mask: Uint8Array, name: string): void {
  expect(y.length).toBe(mask.length);
  let differ = 0;
  let first = -1;
  for (let i = 0; i < mask.length; i++) {
    if ((y[i] !== 0 ? 1 : 0) !== mask[i]) {
      differ++;
      if (first < 0) first = i;
    }
  }
  expect(differ, `${name}: ${differ} mask elements differ from the CPU reference, first at ${first}`).toBe(0);
}

describe.skipIf(!fx.gpu)(`dropout on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  it.each([1, 7, 63, 65, 129, 4099])('forward and backward match the reference mask exactly, n=%i', async (n) => {
    const opts = { p: 0.3, seed: 1234 + n, offset: 17 };
    const xs = nonzero(n, n);
    const dys = nonzero(n, n + 1);
    const y = gpu.empty([n]);
    const dx = gpu.empty([n]);
    gpu.poison(y);
    gpu.poison(dx);
    await dropoutForward(gpu, gpu.upload(xs), y, opts);
    await dropoutBackward(gpu, gpu.upload(dys), dx, opts);
    const ys = await gpu.read(y);
    const dxs = await gpu.read(dx);
    const mask = ref.dropoutMask(n, opts.p, opts.seed, opts.offset);
    expectSameMask(ys, mask, 'dropout.fwd');
    expectSameMask(dxs, mask, 'dropout.bwd');
    expectClose(ys, ref.dropoutForward(xs, opts.p, opts.seed, opts.offset), TOL.dropout, { name: 'dropout.fwd y' });
    expectClose(dxs, ref.dropoutBackward(dys, opts.p, opts.seed, opts.offset), TOL.dropout, { name: 'dropout.bwd dx' });
  });

  it('keeps a fraction near 1 - p over 1e5 elements, and different seeds draw different masks', async () => {
    const n = 100_000;
    const xs = new Float32Array(n).fill(1);
    const x = gpu.upload(xs);
    const y = gpu.empty([n]);
    const masks: Uint8Array[] = [];
    for (const [p, seed] of [
      [0.1, 1],
      [0.5, 2],
      [0.9, 3],
      [0.5, 4],
    ] as const) {
      gpu.poison(y);
      await dropoutForward(gpu, x, y, { p, seed });
      const ys = await gpu.read(y);
      const mask = Uint8Array.from(ys, (v) => (v !== 0 ? 1 : 0));
      const kept = mask.reduce((a, b) => a + b, 0);
      // Binomial(n, 1 - p): 6 standard deviations is a bound a correct generator fails with probability ~2e-9.
      const sigma = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(kept / n - (1 - p)), `p=${p}: kept ${kept} of ${n}`).toBeLessThan(6 * sigma);
      // Every kept element is exactly 1 / (1 - p) rounded to f32.
      const scale = Math.fround(1 / (1 - p));
      expect(ys.every((v) => v === 0 || v === scale)).toBe(true);
      masks.push(mask);
    }
    // Seeds 2 and 4 at p = 0.5 agree on about half the elements (independent masks), not all of them.
    let agree = 0;
    for (let i = 0; i < n; i++) agree += masks[1]![i] === masks[3]![i] ? 1 : 0;
    expect(Math.abs(agree / n - 0.5)).toBeLessThan(6 * Math.sqrt(0.25 / n));
  });

  it('p = 0 is the identity, bit for bit', async () => {
    const n = 129;
    const xs = randomF32(n, 5);
    const y = gpu.empty([n]);
    const dx = gpu.empty([n]);
    gpu.poison(y);
    gpu.poison(dx);
    await dropoutForward(gpu, gpu.upload(xs), y, { p: 0, seed: 9 });
    await dropoutBackward(gpu, gpu.upload(xs), dx, { p: 0, seed: 9 });
    expect(Array.from(await gpu.read(y))).toEqual(Array.from(xs));
    expect(Array.from(await gpu.read(dx))).toEqual(Array.from(xs));
  });

  it('a counter offset near 2^32 wraps exactly as the reference does', async () => {
    const n = 65;
    const opts = { p: 0.5, seed: 0xdeadbeef, offset: 0xffffffff - 30 };
    const y = gpu.empty([n]);
    gpu.poison(y);
    await dropoutForward(gpu, gpu.upload(nonzero(n, 6)), y, opts);
    expectSameMask(await gpu.read(y), ref.dropoutMask(n, opts.p, opts.seed, opts.offset), 'dropout.fwd wrapped offset');
  });

  it('backward accumulates into dx when asked', async () => {
    const n = 65;
    const opts = { p: 0.25, seed: 77 };
    const dys = randomF32(n, 7);
    const prior = randomF32(n, 8);
    const dx = gpu.upload(prior);
    await dropoutBackward(gpu, gpu.upload(dys), dx, opts, true);
    const expected = ref.dropoutBackward(dys, opts.p, opts.seed).map((v, i) => v + prior[i]!);
    expectClose(await gpu.read(dx), expected, TOL.dropout, { name: 'dropout.bwd accumulate' });
  });

  it('rejects p outside [0, 1), bad seeds and mismatched sizes before dispatch', async () => {
    const x = gpu.empty([4]);
    const y = gpu.empty([4]);
    await expect(dropoutForward(gpu, x, y, { p: 1, seed: 0 })).rejects.toThrow(/dropout\.fwd.*p must lie in \[0, 1\)/);
    await expect(dropoutForward(gpu, x, y, { p: -0.1, seed: 0 })).rejects.toThrow(/p must lie/);
    await expect(dropoutForward(gpu, x, y, { p: Number.NaN, seed: 0 })).rejects.toThrow(/p must lie/);
    await expect(dropoutBackward(gpu, x, y, { p: 0.5, seed: 1.5 })).rejects.toThrow(/dropout\.bwd.*seed must be a u32/);
    await expect(dropoutForward(gpu, x, gpu.empty([5]), { p: 0.5, seed: 0 })).rejects.toThrow(/y must have 4 elements/);
  });
});
