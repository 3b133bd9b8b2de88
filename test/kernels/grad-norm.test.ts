import { afterAll, describe, expect, it } from 'vitest';
import { adamwStep, gradNorm, gradNormPartialKernel, gradNormScratchSize, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

// TOL.gradNorm (rtol 1e-5): the two-stage tree sum has depth ~25 for 1e5 terms, bounding the relative error of
// the sum of squares by ~26 * 2^-24 = 1.6e-6 (see ops/grad-norm.ts); a sequential f32 sum would only guarantee 6e-3.
describe.skipIf(!fx.gpu)(`grad-norm on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  it.each([1, 7, 65, 129, 2048, 2049, 100_003])('one tensor, n=%i', async (n) => {
    const xs = randomF32(n, n);
    const out = gpu.empty([1]);
    gpu.poison(out);
    await gradNorm(gpu, [gpu.upload(xs)], out);
    expectClose(await gpu.read(out), [ref.gradNormForward([xs])], TOL.gradNorm, { name: `grad-norm n=${n}` });
  });

  it('several tensors (one empty) into one norm, with an explicit scratch', async () => {
    const sizes = [1, 7, 65, 129, 100_003, 0, 4099];
    const data = sizes.map((n, i) => randomF32(n, 50 + i));
    const tensors = data.map((d, i) => (sizes[i] ? gpu.upload(d) : gpu.empty([0])));
    const scratch = gpu.empty([gradNormScratchSize(tensors)]);
    gpu.poison(scratch); // every slot must be written by stage 1
    const out = gpu.empty([1]);
    gpu.poison(out);
    await gradNorm(gpu, tensors, out, scratch);
    expectClose(await gpu.read(out), [ref.gradNormForward(data)], TOL.gradNorm, { name: 'grad-norm several tensors' });
    // And the same tensors again through the per-device scratch (a norm with a different tensor order).
    await gradNorm(gpu, [...tensors].reverse(), out);
    expectClose(await gpu.read(out), [ref.gradNormForward(data)], TOL.gradNorm, { name: 'grad-norm cached scratch' });
  });

  it('an empty list gives 0; a too-small scratch is rejected', async () => {
    const out = gpu.empty([1]);
    gpu.poison(out);
    await gradNorm(gpu, [], out);
    expect((await gpu.read(out))[0]).toBe(0);
    const t = gpu.upload(randomF32(5000, 1));
    await expect(gradNorm(gpu, [t], out, gpu.empty([2]))).rejects.toThrow(/grad-norm\.partial.*scratch must have at least 3 elements/);
  });

  it('partial slots of adjacent tensors do not overwrite each other', async () => {
    const a = randomF32(2048 * 3 + 1, 2); // 4 partials, the last covering one element
    const b = randomF32(10, 3);
    const out = gpu.empty([1]);
    gpu.poison(out);
    await gradNorm(gpu, [gpu.upload(a), gpu.upload(b)], out);
    expectClose(await gpu.read(out), [ref.gradNormForward([a, b])], TOL.gradNorm, { name: 'grad-norm adjacent slots' });
  });

  it('a folded stage-1 grid writes exactly its own slots', async () => {
    // With ITEMS = 1 a workgroup covers 256 elements; this needs more than 65535 workgroups (about 67 MB), so the
    // runtime folds the grid into (x, y) with spare workgroups that must return without writing past the slots.
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    const n = (max + 3) * 256 + 5;
    const groups = Math.ceil(n / 256);
    const xs = randomF32(n, 9);
    const offset = 3;
    const scratch = gpu.upload(new Float32Array(offset + groups + 8).fill(-7));
    await gpu.dispatch(gradNormPartialKernel, {
      tensors: [gpu.upload(xs), scratch],
      params: { n, offset },
      grid: [groups],
      overrides: { ITEMS: 1 },
    });
    const got = await gpu.read(scratch);
    expect(Array.from(got.subarray(0, offset))).toEqual([-7, -7, -7]);
    expect(Array.from(got.subarray(offset + groups))).toEqual(new Array(8).fill(-7));
    const want = new Float64Array(groups);
    for (let i = 0; i < n; i++) want[Math.floor(i / 256)] += xs[i]! * xs[i]!;
    expectClose(got.subarray(offset, offset + groups), want, TOL.gradNorm, { name: 'grad-norm.partial folded' });
  });

  it("feeds adamw's clip on the GPU, with no readback in between", async () => {
    const n = 129;
    const [ps, gs, g2s] = [randomF32(n, 4), randomF32(n, 5), randomF32(7, 6)];
    const p = gpu.upload(ps);
    const g = gpu.upload(gs);
    const m = gpu.zeros([n]);
    const v = gpu.zeros([n]);
    const norm = gpu.empty([1]);
    await gradNorm(gpu, [g, gpu.upload(g2s)], norm);
    const o = { lr: 1e-2, step: 1, weightDecay: 0.1 };
    await adamwStep(gpu, p, g, m, v, { ...o, clip: { norm, maxNorm: 1 } });
    const gn = ref.gradNormForward([gs, g2s]);
    expect(gn).toBeGreaterThan(1); // so the clip really scales
    const want = ref.adamwStep(ps, gs, new Float64Array(n), new Float64Array(n), {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      ...o,
      maxNorm: 1,
      gradNorm: gn,
    });
    expectClose(await gpu.read(m), want.m, TOL.adamw, { name: 'grad-norm -> adamw m' });
    expectClose(await gpu.read(p), want.p, TOL.adamw, { name: 'grad-norm -> adamw p' });
  });
});
