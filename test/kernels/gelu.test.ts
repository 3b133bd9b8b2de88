import { afterAll, describe, expect, it } from 'vitest';
import { addForward, geluBackward, geluForward, ref } from '@emofuse/kernels';
import { expectClose, expectOp } from '../helpers/close.ts';
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
    await expectOp(gpu, {
      name: 'gelu',
      tol: TOL.gelu,
      in: { x: xs, dy: dys },
      out: { y: [n], dx: [n] },
      run: async (t) => {
        await geluForward(gpu, t.x!, t.y!);
        await geluBackward(gpu, t.x!, t.dy!, t.dx!);
      },
      want: () => ({ y: ref.geluForward(xs), dx: ref.geluBackward(xs, dys) }),
    });
  });

  it('gelu backward accumulates into dx when asked', async () => {
    const n = 65;
    const [xs, dys, prior] = [randomF32(n, 1), randomF32(n, 2), randomF32(n, 3)];
    await expectOp(gpu, {
      name: 'gelu.bwd accumulate',
      tol: TOL.gelu,
      in: { x: xs, dy: dys },
      out: { dx: prior },
      run: (t) => geluBackward(gpu, t.x!, t.dy!, t.dx!, true),
      want: () => ({ dx: ref.geluBackward(xs, dys).map((v, i) => v + prior[i]!) }),
    });
  });

  it.each([1, 7, 63, 65, 129])('add forward, n=%i', async (n) => {
    const [as, bs] = [randomF32(n, 10 + n), randomF32(n, 20 + n)];
    await expectOp(gpu, {
      name: 'add.fwd',
      tol: TOL.add,
      in: { a: as, b: bs },
      out: { out: [n] },
      run: (t) => addForward(gpu, t.a!, t.b!, t.out!, -0.5),
      want: () => ({ out: ref.addForward(as, bs, -0.5) }),
    });
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
