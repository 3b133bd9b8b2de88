import { afterAll, describe, expect, it } from 'vitest';
import {
  attentionMergeHeads,
  attentionSplitHeads,
  attentionUnfusedBackward,
  attentionUnfusedForward,
  createAttentionUnfusedWorkspace,
  destroyAttentionUnfusedWorkspace,
} from '@emofuse/bench';
import { lengthMask, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`unfused attention on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  it.each([
    [1, 1, 1, 1],
    [2, 7, 3, 16],
    [3, 65, 2, 5],
  ])('head split / merge: B=%i T=%i H=%i D=%i', async (B, T, H, D) => {
    const n = B * T * H * D;
    const xs = randomF32(n, n);
    const expected = new Float64Array(n); // [B, H, T, D]
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++)
          for (let d = 0; d < D; d++) expected[((b * H + h) * T + t) * D + d] = xs[((b * T + t) * H + h) * D + d]!;
    const split = gpu.empty([B, H, T, D]);
    const back = gpu.empty([B, T, H * D]);
    gpu.poison(split);
    gpu.poison(back);
    await attentionSplitHeads(gpu, gpu.upload(xs, [B, T, H * D]), split, { B, T, H, D });
    await attentionMergeHeads(gpu, split, back, { B, T, H, D });
    const exact = { atol: 0, rtol: 0 };
    expectClose(await gpu.read(split), expected, exact, { name: 'attention-heads.fwd.split', shape: [B, H, T, D] });
    expectClose(await gpu.read(back), xs, exact, { name: 'attention-heads.fwd.merge', shape: [B, T, H * D] });
  });

  // Tq != Tk everywhere; masks with a fully masked batch (every query row of it fully masked).
  const cases = [
    { B: 3, Tq: 7, Tk: 65, H: 2, D: 16, lengths: [40, 0, 65] },
    { B: 2, Tq: 65, Tk: 7, H: 3, D: 32, lengths: [0, 5] },
    { B: 2, Tq: 63, Tk: 129, H: 1, D: 32, lengths: null },
    { B: 2, Tq: 1, Tk: 3, H: 4, D: 16, lengths: [3, 0] },
  ];
  it.each(cases)('forward and backward vs the fused reference: B=$B Tq=$Tq Tk=$Tk H=$H D=$D lengths=$lengths', async (c) => {
    const { B, Tq, Tk, H, D } = c;
    const C = H * D;
    const seed = B * 1000 + Tq * 10 + Tk;
    const qs = randomF32(B * Tq * C, seed);
    const ks = randomF32(B * Tk * C, seed + 1);
    const vs = randomF32(B * Tk * C, seed + 2);
    const douts = randomF32(B * Tq * C, seed + 3);
    const masks = c.lengths ? lengthMask(c.lengths, Tk) : null;
    const q = gpu.upload(qs, [B, Tq, C]);
    const k = gpu.upload(ks, [B, Tk, C]);
    const v = gpu.upload(vs, [B, Tk, C]);
    const mask = masks ? gpu.upload(masks, [B, Tk]) : null;
    const out = gpu.empty([B, Tq, C]);
    const dq = gpu.empty([B, Tq, C]);
    const dk = gpu.empty([B, Tk, C]);
    const dv = gpu.empty([B, Tk, C]);
    const ws = createAttentionUnfusedWorkspace(gpu, { B, Tq, Tk, H, D });
    for (const t of [out, dq, dk, dv, ws.s, ws.p, ws.ds, ws.oh, ws.dqh, ws.dkh, ws.dvh]) gpu.poison(t);

    await attentionUnfusedForward(gpu, q, k, v, mask, out, ws, { heads: H });
    await attentionUnfusedBackward(gpu, gpu.upload(douts, [B, Tq, C]), dq, dk, dv, ws, { heads: H });

    const dims = { B, Tq, Tk, H, D };
    const f = ref.crossAttentionForward(qs, ks, vs, masks, dims);
    const g = ref.crossAttentionBackward(qs, ks, vs, masks, f.out, f.lse, douts, dims);
    const label = `B=${B} Tq=${Tq} Tk=${Tk} H=${H} D=${D}`;
    const outGpu = await gpu.read(out);
    const dqGpu = await gpu.read(dq);
    expectClose(outGpu, f.out, TOL.attentionForward, { name: `attention-unfused.fwd out ${label}`, shape: [B, Tq, C] });
    expectClose(dqGpu, g.dq, TOL.attentionBackward, { name: `attention-unfused.bwd dq ${label}`, shape: [B, Tq, C] });
    expectClose(await gpu.read(dk), g.dk, TOL.attentionBackward, { name: `attention-unfused.bwd dk ${label}`, shape: [B, Tk, C] });
    expectClose(await gpu.read(dv), g.dv, TOL.attentionBackward, { name: `attention-unfused.bwd dv ${label}`, shape: [B, Tk, C] });

    // A fully masked batch: out and dq exactly zero.
    c.lengths?.forEach((len, b) => {
      if (len > 0) return;
      for (let i = b * Tq * C; i < (b + 1) * Tq * C; i++) {
        expect(Math.abs(outGpu[i]!)).toBe(0);
        expect(Math.abs(dqGpu[i]!)).toBe(0);
      }
    });
    destroyAttentionUnfusedWorkspace(ws);
  });

  it('rejects a workspace of another shape and mismatched tensors', async () => {
    const ws = createAttentionUnfusedWorkspace(gpu, { B: 1, Tq: 2, Tk: 3, H: 2, D: 4 });
    const q = gpu.empty([1, 2, 8]);
    const k = gpu.empty([1, 3, 8]);
    await expect(attentionUnfusedForward(gpu, q, k, gpu.empty([1, 3, 8]), null, gpu.empty([1, 2, 8]), ws, { heads: 4 })).rejects.toThrow(
      /attention-unfused\.fwd.*workspace is for B=1 Tq=2 Tk=3 H=2 D=4/,
    );
    await expect(attentionUnfusedForward(gpu, q, k, gpu.empty([1, 4, 8]), null, gpu.empty([1, 2, 8]), ws, { heads: 2 })).rejects.toThrow(
      /v must have shape \[1, 3, 8\]/,
    );
    await expect(
      attentionUnfusedForward(gpu, q, k, gpu.empty([1, 3, 8]), gpu.empty([1, 2]), gpu.empty([1, 2, 8]), ws, { heads: 2 }),
    ).rejects.toThrow(/mask must have shape \[1, 3\]/);
    destroyAttentionUnfusedWorkspace(ws);
  });
});
