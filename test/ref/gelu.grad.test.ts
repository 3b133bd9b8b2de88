// GELU references (packages/kernels/src/ref/gelu.ts) in both forms, float64, no GPU: the float64 erf against C's
// erf, and each form's backward against central finite differences of its forward (loss = sum(gelu(x) * w)).

import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

// C's erf (glibc, through Python's math.erf), printed with repr: both sides of the series / continued fraction split (2.5).
const ERF: readonly [number, number][] = [
  [1e-8, 1.1283791670955126e-8],
  [0.1, 0.1124629160182849],
  [0.5, 0.5204998778130465],
  [1, 0.8427007929497149],
  [1.5, 0.9661051464753108],
  [2, 0.9953222650189527],
  [2.4999, 0.9995928300996666],
  [2.5, 0.999593047982555],
  [3, 0.9999779095030014],
  [3.5, 0.9999992569016276],
  [4.5, 0.9999999998033839],
  [5.8, 0.9999999999999998],
];

describe('gelu reference', () => {
  it('erf (float64) equals C erf within 1.2e-15 relative (measured on 160,001 points of [-8, 8]: 1.1e-15), and is odd', () => {
    for (const [x, want] of ERF) {
      expect(Math.abs(ref.erf(x) - want), `erf(${x})`).toBeLessThanOrEqual(1.2e-15 * want);
      expect(ref.erf(-x)).toBe(-ref.erf(x));
    }
    expect(ref.erf(0)).toBe(0);
    expect(ref.erf(40)).toBe(1);
    expect(ref.erf(Number.NaN)).toBeNaN();
  });

  it("erf' = 2/sqrt(pi) exp(-x^2) (central differences, both sides of the split)", () => {
    for (const x of [-3.1, -1.2, 0, 0.3, 2.2, 2.5, 2.8, 4]) {
      const h = 1e-5;
      const fd = (ref.erf(x + h) - ref.erf(x - h)) / (2 * h);
      expect(Math.abs(fd - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)), `x = ${x}`).toBeLessThan(1e-9);
    }
  });

  it('the erf form is x Phi(x): gelu(0) = 0, gelu(x) - gelu(-x) = x, and it is not the tanh form', () => {
    const xs = [0, 0.5, 1, 3, 7];
    const y = ref.geluForward(xs, 'erf');
    const yn = ref.geluForward(
      xs.map((x) => -x),
      'erf',
    );
    for (const [i, x] of xs.entries()) expect(y[i]! - yn[i]!).toBeCloseTo(x, 14);
    expect(y[0]).toBe(0);
    // the forms differ by up to ~1e-3 (BERT vs GPT-2): at x = 1, 0.841345 (erf) vs 0.841192 (tanh)
    expect(y[2]).toBeCloseTo(0.8413447460685429, 14);
    expect(ref.geluForward([1])[0]).toBeCloseTo(0.8411919906082768, 14);
  });

  it.each(['tanh', 'erf'] as const)('%s form backward vs finite differences', (form) => {
    const x = toF64(randomF32(64, 5)).map((v) => 3 * v); // [-6, 6]
    const w = toF64(randomF32(64, 6));
    const g = ref.geluBackward(x, w, form);
    expectClose(
      g,
      numericGrad((xx) => dot(ref.geluForward(xx, form), w), x),
      FD_TOL,
      { name: `gelu ${form} dx` },
    );
  });
});
