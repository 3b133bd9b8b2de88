import { afterAll, describe, expect, it } from 'vitest';
import {
  addForward,
  geluBackward,
  geluBackwardKernel,
  geluForward,
  geluForwardKernel,
  ERF_WGSL,
  matmulForwardKernel,
  ref,
} from '@emofuse/kernels';
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

  // The exact form (BERT's): erf is a rational approximation in WGSL (shaders/gelu.fwd.wgsl), the float64 erf here.
  it.each([1, 7, 63, 65, 129, 4099])('gelu erf form forward and backward, n=%i', async (n) => {
    const xs = randomF32(n, n + 50);
    xs[0] = n > 1 ? -9.5 : xs[0]!; // beyond erf's clamp (4) and the density term's (10 / sqrt 2): no NaN
    if (n > 2) xs[1] = 12;
    const dys = randomF32(n, n + 51);
    await expectOp(gpu, {
      name: 'gelu erf',
      tol: TOL.gelu,
      in: { x: xs, dy: dys },
      out: { y: [n], dx: [n] },
      run: async (t) => {
        await geluForward(gpu, t.x!, t.y!, 'erf');
        await geluBackward(gpu, t.x!, t.dy!, t.dx!, false, 'erf');
      },
      want: () => ({ y: ref.geluForward(xs, 'erf'), dx: ref.geluBackward(xs, dys, 'erf') }),
    });
  });

  it('gelu erf form: the WGSL erf within its stated bound on a dense grid of [-8, 8]', async () => {
    // y / (0.5 x) - 1 = erf(x / sqrt 2): the kernel's erf error, read back through the forward (|x| >= 0.25).
    const n = 1 << 16;
    const xs = Float32Array.from({ length: n }, (_, i) => -8 + (16 * i) / (n - 1));
    const dys = new Float32Array(n).fill(1);
    const rep = await expectOp(gpu, {
      name: 'gelu erf grid',
      tol: TOL.gelu,
      in: { x: xs, dy: dys },
      out: { y: [n], dx: [n] },
      run: async (t) => {
        await geluForward(gpu, t.x!, t.y!, 'erf');
        await geluBackward(gpu, t.x!, t.dy!, t.dx!, false, 'erf');
      },
      want: () => ({ y: ref.geluForward(xs, 'erf'), dx: ref.geluBackward(xs, dys, 'erf') }),
    });
    const y = await (async () => {
      const t = gpu.upload(xs);
      const out = gpu.empty([n]);
      await geluForward(gpu, t, out, 'erf');
      return gpu.read(out);
    })();
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const x = xs[i]!;
      if (Math.abs(x) < 0.25) continue;
      worst = Math.max(worst, Math.abs(y[i]! / (0.5 * x) - 1 - ref.erf(x / Math.SQRT2)));
    }
    console.log(
      `WGSL erf on ${fx.label}: max |erf error| ${worst.toExponential(2)}; gelu max abs ${rep.outputs[0]!.maxAbs.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-6); // the f32 rounding of y / (0.5 x) adds ~1e-7 to the kernel's own 4.5e-7
  });

  it('gelu.fwd, gelu.bwd and matmul.fwd compile with the one erf_f32 of shaders/gelu.erf.wgsl', () => {
    const defs = (src: string) => src.match(/\nfn erf_f32\(/g)?.length ?? 0;
    expect(ERF_WGSL).toMatch(/fma/);
    for (const k of [geluForwardKernel, geluBackwardKernel, matmulForwardKernel]) {
      expect(k.source.endsWith(ERF_WGSL), k.name).toBe(true);
      expect(defs(k.source), k.name).toBe(1);
    }
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
    await expectOp(gpu, {
      name: 'gelu.bwd erf accumulate',
      tol: TOL.gelu,
      in: { x: xs, dy: dys },
      out: { dx: prior },
      run: (t) => geluBackward(gpu, t.x!, t.dy!, t.dx!, true, 'erf'),
      want: () => ({ dx: ref.geluBackward(xs, dys, 'erf').map((v, i) => v + prior[i]!) }),
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
