import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

/** The PCG hash written with BigInt, independently of the Math.imul version in ref/dropout.ts. */
function pcgBig(v: number): number {
  const M = 1n << 32n;
  const state = (BigInt(v) * 747796405n + 2891336453n) % M;
  const word = (((state >> ((state >> 28n) + 4n)) ^ state) * 277803737n) % M;
  return Number((word >> 22n) ^ word);
}

describe('dropout reference', () => {
  it('the u32 hash matches a BigInt implementation', () => {
    for (const v of [0, 1, 2, 12345, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xdeadbeef]) {
      expect(ref.dropoutHash(v)).toBe(pcgBig(v));
    }
  });

  it('backward matches central finite differences of sum(dropout(x) * w)', () => {
    const n = 33;
    const [p, seed] = [0.4, 3];
    const x = toF64(randomF32(n, 1));
    const w = toF64(randomF32(n, 2));
    const num = numericGrad((xx) => dot(ref.dropoutForward(xx, p, seed), w), x);
    expectClose(ref.dropoutBackward(w, p, seed), num, FD_TOL, { name: 'dropout ref dx vs FD' });
    // The mask at this seed drops some and keeps some, so the check above is not vacuous.
    const kept = ref.dropoutMask(n, p, seed).reduce((a, b) => a + b, 0);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(n);
  });

  it('threshold: p = 0 keeps everything, p outside [0, 1) throws', () => {
    expect(ref.dropoutThreshold(0)).toBe(0);
    expect(ref.dropoutMask(100, 0, 5).every((m) => m === 1)).toBe(true);
    expect(ref.dropoutThreshold(0.5)).toBe(2 ** 31);
    expect(() => ref.dropoutThreshold(1)).toThrow(RangeError);
    expect(() => ref.dropoutThreshold(-1e-9)).toThrow(RangeError);
  });
});
