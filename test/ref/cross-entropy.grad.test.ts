import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { numericGrad, toF64 } from '../helpers/fd.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

describe('cross-entropy reference', () => {
  it('dlogits match central finite differences of the weighted-mean loss, with an ignored row', () => {
    const [B, K] = [5, 4];
    const z = toF64(randomF32(B * K, 1));
    const ys = [2, -1, 0, 3, 2];
    const ws = toF64(randomF32(K, 2, 0.25, 2));
    const num = numericGrad((zz) => ref.crossEntropyForward(zz, ys, ws, B, K).loss, z);
    const d = ref.crossEntropyBackward(z, ys, ws, B, K);
    expectClose(d, num, FD_TOL, { name: 'cross-entropy ref dlogits vs FD', shape: [B, K] });
    expect(d.subarray(K, 2 * K).every((v) => v === 0)).toBe(true);
  });

  it('with label smoothing 0.2: dlogits match finite differences; the loss is (1 - eps) nll + eps mean_k(lse - z_k)', () => {
    const [B, K] = [5, 4];
    const z = toF64(randomF32(B * K, 3));
    const ys = [1, 3, -1, 0, 1];
    const ws = toF64(randomF32(K, 4, 0.25, 2));
    const num = numericGrad((zz) => ref.crossEntropyForward(zz, ys, ws, B, K, 0.2).loss, z);
    expectClose(ref.crossEntropyBackward(z, ys, ws, B, K, 0.2), num, FD_TOL, {
      name: 'cross-entropy ref smoothed dlogits vs FD',
      shape: [B, K],
    });
    const row = Array.from(z.subarray(0, K));
    const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    const want = 0.8 * (lse - row[1]!) + (0.2 * row.reduce((a, v) => a + (lse - v), 0)) / K;
    expect(ref.crossEntropyForward(z, ys, ws, B, K, 0.2).losses[0]).toBeCloseTo(want, 12);
  });

  it('finite differences hold at logits of +-80', () => {
    const [B, K] = [2, 3];
    const z = Float64Array.from([80, -80, 0.5, -80, 79.5, 80]);
    const ys = [1, 0];
    const ws = [1, 2, 0.5];
    const num = numericGrad((zz) => ref.crossEntropyForward(zz, ys, ws, B, K).loss, z, 1e-5);
    expectClose(ref.crossEntropyBackward(z, ys, ws, B, K), num, FD_TOL, { name: 'cross-entropy ref +-80 vs FD' });
    // Row 0: logsumexp ~ 80, label logit -80: nll ~ 160.
    expect(ref.crossEntropyForward(z, ys, ws, B, K).losses[0]).toBeCloseTo(160, 6);
  });

  it("is PyTorch's weighted mean: sum w[y] nll / sum w[y]", () => {
    // Two rows, uniform logits over 2 classes: nll = log 2 each, so the weighted mean is log 2 for any weights.
    const r = ref.crossEntropyForward([0, 0, 1, 1], [0, 1], [3, 1], 2, 2);
    expect(r.loss).toBeCloseTo(Math.LN2, 12);
    expect(r.weightSum).toBe(4);
    // Different nll per row: (3 * nll0 + 1 * nll1) / 4.
    const z = [2, 0, 0, 1];
    const nll0 = Math.log(Math.exp(2) + 1) - 2;
    const nll1 = Math.log(1 + Math.E) - 1;
    expect(ref.crossEntropyForward(z, [0, 1], [3, 1], 2, 2).loss).toBeCloseTo((3 * nll0 + nll1) / 4, 12);
    expect(() => ref.crossEntropyForward(z, [0, 2], [3, 1], 2, 2)).toThrow(RangeError);
  });
});
