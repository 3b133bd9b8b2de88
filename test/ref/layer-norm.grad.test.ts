// The layer-norm reference backward (dx, dgamma, dbeta) against central finite differences of
// loss = sum(layerNormForward(x, gamma, beta).y * w), float64, including C = 1 (y = beta).

import { describe, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { expectClose } from '../helpers/close.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

describe('layer-norm reference backward vs finite differences', () => {
  it.each([
    [1, 1],
    [7, 1],
    [1, 7],
    [7, 7],
    [3, 65],
    [65, 3],
  ])('R=%i C=%i', (R, C) => {
    const x = toF64(randomF32(R * C, R * 10 + C));
    const gamma = toF64(randomF32(C, 1));
    const beta = toF64(randomF32(C, 2));
    const w = toF64(randomF32(R * C, 3));
    const eps = 1e-5;
    const f = ref.layerNormForward(x, gamma, beta, R, C, eps);
    const b = ref.layerNormBackward(x, gamma, f.mean, f.rstd, w, R, C);
    const lossX = (v: Float64Array) => dot(ref.layerNormForward(v, gamma, beta, R, C, eps).y, w);
    const lossG = (v: Float64Array) => dot(ref.layerNormForward(x, v, beta, R, C, eps).y, w);
    const lossB = (v: Float64Array) => dot(ref.layerNormForward(x, gamma, v, R, C, eps).y, w);
    // rstd can reach 1/sqrt(eps) ~ 316 for small C, so finite differences use a smaller step there.
    const h = C <= 3 ? 1e-8 : 1e-6;
    expectClose(b.dx, numericGrad(lossX, x, h), FD_TOL, { name: 'layer-norm dx', shape: [R, C] });
    expectClose(b.dgamma, numericGrad(lossG, gamma), FD_TOL, { name: 'layer-norm dgamma', shape: [C] });
    expectClose(b.dbeta, numericGrad(lossB, beta), FD_TOL, { name: 'layer-norm dbeta', shape: [C] });
  });
});
