// The softmax reference backward (dx = scale * y * (dy - sum(dy * y))) against central finite differences
// of loss(x) = sum(softmaxForward(x) * w), with masks, rowsPerMaskRow > 1, fully masked rows and scale != 1.

import { describe, expect, it } from 'vitest';
import { lengthMask, ref } from '@emofuse/kernels';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { expectClose } from '../helpers/close.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

describe('softmax reference backward vs finite differences', () => {
  it.each([
    { R: 1, N: 1, scale: 1 },
    { R: 7, N: 7, scale: 1 },
    { R: 3, N: 65, scale: 0.25 },
    { R: 65, N: 3, scale: 3 },
  ])('unmasked R=$R N=$N scale=$scale', ({ R, N, scale }) => {
    const x = toF64(randomF32(R * N, R + N));
    const w = toF64(randomF32(R * N, R + N + 1));
    const loss = (v: Float64Array) => dot(ref.softmaxForward(v, R, N, { scale }), w);
    const y = ref.softmaxForward(x, R, N, { scale });
    expectClose(ref.softmaxBackward(y, w, R, N, scale), numericGrad(loss, x), FD_TOL, { name: 'softmax dx', shape: [R, N] });
  });

  it('key mask with rowsPerMaskRow > 1, a fully masked batch, scale 1/sqrt(D)', () => {
    const H = 2;
    const Tq = 3;
    const Tk = 7;
    const mask = lengthMask([4, 0, 7], Tk); // [B=3, Tk]
    const R = 3 * H * Tq;
    const opts = { mask, rowsPerMaskRow: H * Tq, scale: 1 / Math.sqrt(8) };
    const x = toF64(randomF32(R * Tk, 3));
    const w = toF64(randomF32(R * Tk, 4));
    const loss = (v: Float64Array) => dot(ref.softmaxForward(v, R, Tk, opts), w);
    const y = ref.softmaxForward(x, R, Tk, opts);
    const dx = ref.softmaxBackward(y, w, R, Tk, opts.scale);
    expectClose(dx, numericGrad(loss, x), FD_TOL, { name: 'softmax masked dx', shape: [R, Tk] });
    // The fully masked batch: zeros forward and a zero gradient.
    for (let i = H * Tq * Tk; i < 2 * H * Tq * Tk; i++) {
      expect(y[i]).toBe(0);
      expect(Math.abs(dx[i]!)).toBe(0);
    }
    // Masked columns: zero output; row sums of kept columns are 1.
    expect(y[0 * Tk + 5]).toBe(0);
    expect(y[0] + y[1]! + y[2]! + y[3]!).toBeCloseTo(1, 12);
  });
});
