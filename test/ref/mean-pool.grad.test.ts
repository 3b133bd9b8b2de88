import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { lengthMask, randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

describe('mean-pool reference', () => {
  it('backward matches central finite differences, including a fully masked row', () => {
    const [B, T, C] = [3, 5, 4];
    const ms = lengthMask([0, 2, 5], T); // row 0 fully masked
    const x = toF64(randomF32(B * T * C, 1));
    const w = toF64(randomF32(B * C, 2));
    const num = numericGrad((xx) => dot(ref.meanPoolForward(xx, ms, B, T, C), w), x);
    const dx = ref.meanPoolBackward(ms, w, B, T, C);
    expectClose(dx, num, FD_TOL, { name: 'mean-pool ref dx vs FD', shape: [B, T, C] });
    expect(dx.subarray(0, T * C).every((v) => v === 0)).toBe(true);
    expect(
      ref
        .meanPoolForward(x, ms, B, T, C)
        .subarray(0, C)
        .every((v) => v === 0),
    ).toBe(true);
  });

  it('is the plain mean over kept steps', () => {
    // x[0, t, 0] = t, keep t < 3: mean of 0, 1, 2.
    const y = ref.meanPoolForward([0, 1, 2, 3], [1, 1, 1, 0], 1, 4, 1);
    expect(y[0]).toBe(1);
  });
});
