import { describe, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

describe('glue references (gate, concat-time)', () => {
  it('gate backward matches central finite differences for s, x and y', () => {
    const n = 23;
    const [s, x, y] = [toF64(randomF32(n, 1, -6, 6)), toF64(randomF32(n, 2)), toF64(randomF32(n, 3))];
    const w = toF64(randomF32(n, 4));
    const g = ref.gateBackward(s, x, y, w);
    expectClose(
      g.ds,
      numericGrad((ss) => dot(ref.gateForward(ss, x, y), w), s),
      FD_TOL,
      { name: 'gate ref ds vs FD' },
    );
    expectClose(
      g.dx,
      numericGrad((xx) => dot(ref.gateForward(s, xx, y), w), x),
      FD_TOL,
      { name: 'gate ref dx vs FD' },
    );
    expectClose(
      g.dy,
      numericGrad((yy) => dot(ref.gateForward(s, x, yy), w), y),
      FD_TOL,
      { name: 'gate ref dy vs FD' },
    );
  });

  it('concat-time backward matches central finite differences for a and b', () => {
    const dims = { B: 2, T1: 3, T2: 4, C: 5 };
    const a = toF64(randomF32(dims.B * dims.T1 * dims.C, 5));
    const b = toF64(randomF32(dims.B * dims.T2 * dims.C, 6));
    const w = toF64(randomF32(dims.B * (dims.T1 + dims.T2) * dims.C, 7));
    const g = ref.concatTimeBackward(w, dims);
    expectClose(
      g.da,
      numericGrad((aa) => dot(ref.concatTimeForward(aa, b, dims), w), a),
      FD_TOL,
      { name: 'concat-time ref da vs FD' },
    );
    expectClose(
      g.db,
      numericGrad((bb) => dot(ref.concatTimeForward(a, bb, dims), w), b),
      FD_TOL,
      { name: 'concat-time ref db vs FD' },
    );
  });
});
