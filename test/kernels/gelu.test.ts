import { afterAll, describe, expect, it } from 'vitest';
import { addForward, geluBackward, geluForward, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`gelu and add on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  // 1, 7, 63, 65, 129: not multiples of the workgroup (256) nor of add's vec4 groups.
  it.each([1, 7, 63, 65, 129, 4099])('gelu forward and backward, n=%i', async (n) => {
    const xs = randomF32(n, n);
    xs[0] = n > 1 ? 9.5 : xs[0]!; // large |x|: tanh saturates, no NaN
    const dys = randomF32(n, n + 1);
    const x = gpu.upload(xs);
    const dy = gpu.upload(dys);
    const y = gpu.empty([n]);
    const dx = gpu.empty([n]);
    gpu.poison(y);
    gpu.poison(dx);
    await geluForward(gpu, x, y);
    await geluBackward(gpu, x, dy, dx);
    expectClose(await gpu.read(y), ref.geluForward(xs), TOL.gelu, { name: 'gelu.fwd y' });
    expectClose(await gpu.read(dx), ref.geluBackward(xs, dys), TOL.gelu, { name: 'gelu.bwd dx' });
  });

  it('gelu backward accumulates into dx when asked', async () => {
    const n = 65;
    const xs = randomF32(n, 1);
    const dys = randomF32(n, 2);
    const prior = randomF32(n, 3);
    const dx = gpu.upload(prior);
    await geluBackward(gpu, gpu.upload(xs), gpu.upload(dys), dx, true);
    const expected = ref.geluBackward(xs, dys).map((v, i) => v + prior[i]!);
    expectClose(await gpu.read(dx), expected, TOL.gelu, { name: 'gelu.bwd accumulate' });
  });

  it.each([1, 7, 63, 65, 129])('add forward, n=%i', async (n) => {
    const as = randomF32(n, 10 + n);
    const bs = randomF32(n, 20 + n);
    const out = gpu.empty([n]);
    gpu.poison(out);
    await addForward(gpu, gpu.upload(as), gpu.upload(bs), out, -0.5);
    expectClose(await gpu.read(out), ref.addForward(as, bs, -0.5), TOL.add, { name: 'add.fwd out' });
  });

  it('gelu folds a dispatch above maxComputeWorkgroupsPerDimension', async () => {
    // gelu covers 256 elements per workgroup; this needs more than 65535 workgroups (about 67 MB a tensor).
    const n = (gpu.limits.maxComputeWorkgroupsPerDimension + 3) * 256 + 5;
    const xs = randomF32(n, 7);
    const y = gpu.empty([n]);
    gpu.poison(y);
    await geluForward(gpu, gpu.upload(xs), y);
    expectClose(await gpu.read(y), ref.geluForward(xs), TOL.gelu, { name: 'gelu.fwd folded' });
  });

  it('rejects mismatched sizes before dispatch', async () => {
    await expect(geluForward(gpu, gpu.empty([4]), gpu.empty([5]))).rejects.toThrow(/gelu\.fwd.*y must have 4 elements/);
  });
});
