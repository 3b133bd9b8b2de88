// The fusion model's glue ops (axpy, concat-time, gate) against their float64 references: outputs poisoned
// with NaN, sizes that are not multiples of the workgroup (B=3, T1=5, T2=7, C=13; n = 3*13*37).

import { afterAll, describe, expect, it } from 'vitest';
import { TOL, axpy, concatTimeBackward, concatTimeForward, gateBackward, gateForward, ref } from '@emofuse/kernels';
import { expectOp } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`glue ops on ${fx.label}`, () => {
  const gpu = fx.gpu!;
  const dims = { B: 3, T1: 5, T2: 7, C: 13 };
  const [na, nb, nc] = [dims.B * dims.T1 * dims.C, dims.B * dims.T2 * dims.C, dims.B * (dims.T1 + dims.T2) * dims.C];
  const n = dims.B * dims.C * 37;

  it('axpy: y += alpha x', async () => {
    const [xs, ys] = [randomF32(n, 6), randomF32(n, 5)];
    await expectOp(gpu, {
      name: 'axpy',
      tol: TOL.axpy,
      in: { x: xs },
      out: { y: ys },
      run: (t) => axpy(gpu, t.x!, t.y!, -0.75),
      want: () => ({ y: ref.axpy(xs, ys, -0.75) }),
    });
  });

  it('concat-time forward, backward (overwrite)', async () => {
    const [as, bs, gs] = [randomF32(na, 1), randomF32(nb, 2), randomF32(nc, 3)];
    const g = ref.concatTimeBackward(gs, dims);
    await expectOp(gpu, {
      name: 'concat-time',
      tol: TOL.concatTime,
      in: { a: as, b: bs, dout: gs },
      out: { out: [nc], da: [na], db: [nb] },
      run: async (t) => {
        await concatTimeForward(gpu, t.a!, t.b!, t.out!, dims);
        await concatTimeBackward(gpu, t.dout!, t.da!, t.db!, dims);
      },
      want: () => ({ out: ref.concatTimeForward(as, bs, dims), da: g.da, db: g.db }),
    });
  });

  it('concat-time backward accumulates when asked', async () => {
    const [gs, da0, db0] = [randomF32(nc, 4), randomF32(na, 7), randomF32(nb, 8)];
    const g = ref.concatTimeBackward(gs, dims);
    await expectOp(gpu, {
      name: 'concat-time.bwd accumulate',
      tol: TOL.concatTime,
      in: { dout: gs },
      out: { da: da0, db: db0 },
      run: (t) => concatTimeBackward(gpu, t.dout!, t.da!, t.db!, dims, true),
      want: () => ({ da: g.da.map((v, i) => v + da0[i]!), db: g.db.map((v, i) => v + db0[i]!) }),
    });
  });

  it('gate forward and backward, sigmoid saturated at both ends', async () => {
    const ss = randomF32(n, 7, -30, 30);
    const [xs, ys, gs] = [randomF32(n, 8), randomF32(n, 9), randomF32(n, 10)];
    await expectOp(gpu, {
      name: 'gate',
      tol: TOL.gate,
      in: { s: ss, x: xs, y: ys, dout: gs },
      out: { mix: [n], ds: [n], dx: [n], dy: [n] },
      run: async (t) => {
        await gateForward(gpu, t.s!, t.x!, t.y!, t.mix!);
        await gateBackward(gpu, t.s!, t.x!, t.y!, t.dout!, t.ds!, t.dx!, t.dy!);
      },
      want: () => ({ mix: ref.gateForward(ss, xs, ys), ...ref.gateBackward(ss, xs, ys, gs) }),
    });
  });

  it('rejects mismatched sizes before dispatch', async () => {
    await expect(concatTimeForward(gpu, gpu.empty([na]), gpu.empty([nb]), gpu.empty([nc + 1]), dims)).rejects.toThrow(
      /concat-time\.fwd.*out must have/,
    );
    await expect(axpy(gpu, gpu.empty([4]), gpu.empty([5]))).rejects.toThrow(/axpy\.fwd.*y must have 4 elements/);
  });
});
