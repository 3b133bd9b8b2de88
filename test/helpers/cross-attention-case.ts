// One cross-attention case on the GPU against the float64 reference: out and lse (forward), dq, dk, dv
// (backward), outputs NaN-poisoned, fully masked batch entries exactly zero. Used by test/kernels (the
// product's kernel, v4) and test/bench (the baselines v1-v3, through `impl`).

import { expect } from 'vitest';
import { TOL, crossAttentionBackward, crossAttentionForward, lengthMask, ref, type Gpu, type Tensor } from '@emofuse/kernels';
import { expectClose } from './close.ts';
import { randomF32 } from './rng.ts';

/** The forward and backward to run (defaults to the product's). */
export interface AttentionImpl {
  forward: typeof crossAttentionForward;
  backward: typeof crossAttentionBackward;
}

export interface AttentionCase {
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  D: number;
  /** Kept keys per batch entry (0 = fully masked entry), or null for no mask. */
  lengths: number[] | null;
  /** Multiplies q and k (large logits). */
  gain?: number;
  scale?: number;
  seed: number;
}

function scaled(a: Float32Array, gain: number): Float32Array {
  return gain === 1 ? a : a.map((x) => x * gain);
}

/** Largest |scale * q.k| over all (b, h, i, j): how large the logits of a case really are. */
export function maxAbsScore(q: Float32Array, k: Float32Array, c: AttentionCase): number {
  const C = c.H * c.D;
  const scale = c.scale ?? 1 / Math.sqrt(c.D);
  let best = 0;
  for (let b = 0; b < c.B; b++)
    for (let h = 0; h < c.H; h++)
      for (let i = 0; i < c.Tq; i++)
        for (let j = 0; j < c.Tk; j++) {
          let s = 0;
          for (let d = 0; d < c.D; d++) s += q[(b * c.Tq + i) * C + h * c.D + d]! * k[(b * c.Tk + j) * C + h * c.D + d]!;
          best = Math.max(best, Math.abs(s * scale));
        }
  return best;
}

export function out(gpu: Gpu, shape: number[]): Tensor {
  const t = gpu.empty(shape);
  gpu.poison(t);
  return t;
}

export async function runAttentionCase(
  gpu: Gpu,
  c: AttentionCase,
  opts: {
    selfAttention?: boolean;
    workgroupSize?: number;
    version?: 1 | 2 | 3 | 4 | 5 | 6;
    impl?: AttentionImpl;
    maxScratchElements?: number;
  } = {},
) {
  const { B, Tq, Tk, H, D } = c;
  const C = H * D;
  const gain = c.gain ?? 1;
  const tag =
    `${opts.version ? `v${opts.version} ` : ''}B=${B} Tq=${Tq} Tk=${Tk} H=${H} ` +
    `D=${D}${c.lengths ? ` lengths=${c.lengths}` : ''}${gain !== 1 ? ` gain=${gain}` : ''}`;
  const qs = scaled(randomF32(B * Tq * C, c.seed), gain);
  const ks = opts.selfAttention ? qs : scaled(randomF32(B * Tk * C, c.seed + 1), gain);
  const vs = opts.selfAttention ? qs : randomF32(B * Tk * C, c.seed + 2);
  const douts = randomF32(B * Tq * C, c.seed + 3);
  const masks = c.lengths ? lengthMask(c.lengths, Tk) : null;

  const q = gpu.upload(qs, [B, Tq, C]);
  const k = opts.selfAttention ? q : gpu.upload(ks, [B, Tk, C]);
  const v = opts.selfAttention ? q : gpu.upload(vs, [B, Tk, C]);
  const mask = masks ? gpu.upload(masks, [B, Tk]) : null;
  const o = out(gpu, [B, Tq, C]);
  const lse = out(gpu, [B, H, Tq]);
  const dout = gpu.upload(douts, [B, Tq, C]);
  const dq = out(gpu, [B, Tq, C]);
  const dk = out(gpu, [B, Tk, C]);
  const dv = out(gpu, [B, Tk, C]);
  const heads = { heads: H, scale: c.scale, workgroupSize: opts.workgroupSize, maxScratchElements: opts.maxScratchElements };
  const impl = opts.impl ?? { forward: crossAttentionForward, backward: crossAttentionBackward };
  await impl.forward(gpu, q, k, v, mask, o, lse, heads);
  await impl.backward(gpu, q, k, v, mask, o, lse, dout, dq, dk, dv, heads);

  const dims = { B, Tq, Tk, H, D, scale: c.scale };
  const r = ref.crossAttentionForward(qs, ks, vs, masks, dims);
  const g = ref.crossAttentionBackward(qs, ks, vs, masks, r.out, r.lse, douts, dims);
  const outs = await gpu.read(o);
  const lses = await gpu.read(lse);
  expectClose(outs, r.out, TOL.attentionForward, { name: `cross-attention.fwd out ${tag}`, shape: [B, Tq, C] });
  expectClose(lses, r.lse, TOL.attentionForward, { name: `cross-attention.fwd lse ${tag}`, shape: [B, H, Tq] });
  const gq = await gpu.read(dq);
  const gk = await gpu.read(dk);
  const gv = await gpu.read(dv);
  expectClose(gq, g.dq, TOL.attentionBackward, { name: `cross-attention.bwd dq ${tag}`, shape: [B, Tq, C] });
  expectClose(gk, g.dk, TOL.attentionBackward, { name: `cross-attention.bwd dk ${tag}`, shape: [B, Tk, C] });
  expectClose(gv, g.dv, TOL.attentionBackward, { name: `cross-attention.bwd dv ${tag}`, shape: [B, Tk, C] });
  // Fully masked batch entries: exact zeros and the sentinel, not merely "close".
  c.lengths?.forEach((len, b) => {
    if (len !== 0) return;
    expect(outs.subarray(b * Tq * C, (b + 1) * Tq * C).every((x) => x === 0)).toBe(true);
    expect(lses.subarray(b * H * Tq, (b + 1) * H * Tq).every((x) => x === ref.CROSS_ATTENTION_MASKED_LSE)).toBe(true);
    expect(gq.subarray(b * Tq * C, (b + 1) * Tq * C).every((x) => x === 0)).toBe(true);
    expect(gk.subarray(b * Tk * C, (b + 1) * Tk * C).every((x) => x === 0)).toBe(true);
    expect(gv.subarray(b * Tk * C, (b + 1) * Tk * C).every((x) => x === 0)).toBe(true);
  });
  return { qs, ks };
}
