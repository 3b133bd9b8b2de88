// The cross-attention reference backward (dq, dk, dv from out and lse) against central finite differences of
// loss = sum(crossAttentionForward(q, k, v, mask).out * w), float64: Tq != Tk, several heads, a mask with a
// padded key and a fully masked batch entry, self-attention (k = v = q, gradients summed), a scale override.

import { describe, expect, it } from 'vitest';
import { ref } from '@emofuse/kernels';
import { dot, numericGrad, toF64 } from '../helpers/fd.ts';
import { expectClose } from '../helpers/close.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL } from '../tolerances.ts';

type Dims = ref.CrossAttentionDims;

function check(dims: Dims, mask: Float64Array | null, seed: number): void {
  const { B, Tq, Tk, H, D } = dims;
  const C = H * D;
  const q = toF64(randomF32(B * Tq * C, seed));
  const k = toF64(randomF32(B * Tk * C, seed + 1));
  const v = toF64(randomF32(B * Tk * C, seed + 2));
  const w = toF64(randomF32(B * Tq * C, seed + 3));
  const fwd = ref.crossAttentionForward(q, k, v, mask, dims);
  const g = ref.crossAttentionBackward(q, k, v, mask, fwd.out, fwd.lse, w, dims);
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => dot(ref.crossAttentionForward(qq, kk, vv, mask, dims).out, w);
  const tag = `B=${B} Tq=${Tq} Tk=${Tk} H=${H} D=${D}`;
  expectClose(
    g.dq,
    numericGrad((x) => loss(x, k, v), q),
    FD_TOL,
    { name: `cross-attention ref dq vs FD ${tag}`, shape: [B, Tq, C] },
  );
  expectClose(
    g.dk,
    numericGrad((x) => loss(q, x, v), k),
    FD_TOL,
    { name: `cross-attention ref dk vs FD ${tag}`, shape: [B, Tk, C] },
  );
  expectClose(
    g.dv,
    numericGrad((x) => loss(q, k, x), v),
    FD_TOL,
    { name: `cross-attention ref dv vs FD ${tag}`, shape: [B, Tk, C] },
  );
  // Not vacuous: gradients are nonzero somewhere (with one key the softmax is constant: dq = dk = 0).
  expect(g.dv.some((x) => Math.abs(x) > 1e-3)).toBe(true);
  if (Tk > 1) {
    expect(g.dq.some((x) => Math.abs(x) > 1e-3)).toBe(true);
    expect(g.dk.some((x) => Math.abs(x) > 1e-3)).toBe(true);
  }
}

describe('cross-attention reference backward vs finite differences', () => {
  it('Tq != Tk, two heads, no mask', () => check({ B: 1, Tq: 3, Tk: 5, H: 2, D: 4 }, null, 1));
  it('Tq = 1', () => check({ B: 2, Tq: 1, Tk: 3, H: 1, D: 4 }, null, 11));
  it('Tk = 1', () => check({ B: 1, Tq: 3, Tk: 1, H: 2, D: 4 }, null, 15));
  it('scale override', () => check({ B: 1, Tq: 2, Tk: 3, H: 1, D: 8, scale: 0.9 }, null, 21));

  it('padded keys and a fully masked batch entry: zero gradients there', () => {
    const dims: Dims = { B: 3, Tq: 3, Tk: 4, H: 2, D: 4 };
    const mask = Float64Array.from([1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
    check(dims, mask, 31);
    const C = dims.H * dims.D;
    const q = toF64(randomF32(dims.B * dims.Tq * C, 41));
    const kv = toF64(randomF32(dims.B * dims.Tk * C, 42));
    const dout = toF64(randomF32(dims.B * dims.Tq * C, 43));
    const fwd = ref.crossAttentionForward(q, kv, kv, mask, dims);
    const g = ref.crossAttentionBackward(q, kv, kv, mask, fwd.out, fwd.lse, dout, dims);
    const qRows = (b: number) => [b * dims.Tq * C, (b + 1) * dims.Tq * C] as const;
    // Batch 1: every key padded. out = 0, lse = sentinel, no gradient anywhere in that entry.
    expect(Array.from(fwd.out.subarray(...qRows(1))).every((x) => x === 0)).toBe(true);
    expect(Array.from(fwd.lse.subarray(dims.H * dims.Tq, 2 * dims.H * dims.Tq)).every((x) => x === ref.CROSS_ATTENTION_MASKED_LSE)).toBe(
      true,
    );
    expect(Array.from(g.dq.subarray(...qRows(1))).every((x) => x === 0)).toBe(true);
    expect(Array.from(g.dk.subarray(dims.Tk * C, 2 * dims.Tk * C)).every((x) => x === 0)).toBe(true);
    // Padded key (b=0, j=2): dk = dv = 0.
    expect(Array.from(g.dv.subarray(2 * C, 3 * C)).every((x) => x === 0)).toBe(true);
    expect(Array.from(g.dk.subarray(2 * C, 3 * C)).every((x) => x === 0)).toBe(true);
    // Batch 2 keeps one key: P = 1 for it, out = v of that key, dq = 0 (softmax of one element is constant).
    expect(Array.from(g.dq.subarray(...qRows(2))).every((x) => Math.abs(x) < 1e-12)).toBe(true);
  });

  it('self-attention: k = v = q, the three gradients sum to the gradient of x', () => {
    const dims: Dims = { B: 1, Tq: 4, Tk: 4, H: 2, D: 4 };
    const C = dims.H * dims.D;
    const x = toF64(randomF32(dims.Tq * C, 51));
    const w = toF64(randomF32(dims.Tq * C, 52));
    const mask = Float64Array.from([1, 1, 1, 0]);
    const fwd = ref.crossAttentionForward(x, x, x, mask, dims);
    const g = ref.crossAttentionBackward(x, x, x, mask, fwd.out, fwd.lse, w, dims);
    const dx = g.dq.map((v, i) => v + g.dk[i]! + g.dv[i]!);
    const num = numericGrad((xx) => dot(ref.crossAttentionForward(xx, xx, xx, mask, dims).out, w), x);
    expectClose(dx, num, FD_TOL, { name: 'cross-attention ref self-attention dx vs FD', shape: [dims.Tq, C] });
  });

  it('lse is the log-sum-exp of the scaled, masked scores', () => {
    const dims: Dims = { B: 1, Tq: 2, Tk: 3, H: 1, D: 4 };
    const q = toF64(randomF32(8, 61));
    const k = toF64(randomF32(12, 62));
    const mask = Float64Array.from([1, 0, 1]);
    const { lse } = ref.crossAttentionForward(q, k, k, mask, dims);
    for (let i = 0; i < 2; i++) {
      let sum = 0;
      for (const j of [0, 2]) {
        let s = 0;
        for (let d = 0; d < 4; d++) s += q[i * 4 + d]! * k[j * 4 + d]!;
        sum += Math.exp(s / 2);
      }
      expect(lse[i]).toBeCloseTo(Math.log(sum), 12);
    }
  });
});
