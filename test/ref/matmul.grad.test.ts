// Reference matmul backward vs central finite differences, float64, no GPU.
// loss = sum(out * w) with out = gelu?(op(a) @ op(b) + bias); dc = w, or geluBackward(pre, w) with GELU.

import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { expectClose } from '../helpers/close.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

const CASES = [false, true].flatMap((transA) =>
  [false, true].flatMap((transB) => [false, true].map((broadcastB) => ({ transA, transB, broadcastB, gelu: transA !== broadcastB }))),
);

describe('matmul reference backward vs finite differences', () => {
  it.each(CASES)('transA=$transA transB=$transB broadcastB=$broadcastB gelu=$gelu', ({ transA, transB, broadcastB, gelu }) => {
    const dims = { batch: 2, M: 3, N: 4, K: 5 };
    const batchB = broadcastB ? 1 : dims.batch;
    const a = toF64(randomF32(dims.batch * dims.M * dims.K, 1));
    const b = toF64(randomF32(batchB * dims.K * dims.N, 2));
    const bias = toF64(randomF32(dims.N, 3));
    const w = toF64(randomF32(dims.batch * dims.M * dims.N, 4));
    const layout = { transA, transB, broadcastB };
    const loss = (aa: Float64Array, bb: Float64Array, cc: Float64Array) =>
      dot(ref.matmulForward(aa, bb, dims, { ...layout, bias: cc, gelu }).out, w);

    const { pre } = ref.matmulForward(a, b, dims, { ...layout, bias, gelu });
    const dc = gelu ? ref.geluBackward(pre, w) : w;
    const g = ref.matmulBackward(dc, a, b, dims, layout);

    expectClose(
      g.dA,
      numericGrad((x) => loss(x, b, bias), a),
      FD_TOL,
      { name: 'dA' },
    );
    expectClose(
      g.dB,
      numericGrad((x) => loss(a, x, bias), b),
      FD_TOL,
      { name: 'dB' },
    );
    expectClose(
      g.dBias,
      numericGrad((x) => loss(a, b, x), bias),
      FD_TOL,
      { name: 'dBias' },
    );
  });

  it('forward matches a hand-computed product with bias', () => {
    // [[1, 2], [3, 4]] @ [[5, 6], [7, 8]] + [1, -1] = [[20, 21], [44, 49]]
    const { out } = ref.matmulForward([1, 2, 3, 4], [5, 6, 7, 8], { batch: 1, M: 2, N: 2, K: 2 }, { bias: [1, -1] });
    expect(Array.from(out)).toEqual([20, 21, 44, 49]);
    // A stored transposed ([K, M] = [[1, 3], [2, 4]]) and B stored transposed ([N, K] = [[5, 7], [6, 8]]): same product.
    const t = ref.matmulForward([1, 3, 2, 4], [5, 7, 6, 8], { batch: 1, M: 2, N: 2, K: 2 }, { transA: true, transB: true });
    expect(Array.from(t.out)).toEqual([19, 22, 43, 50]);
  });
});
