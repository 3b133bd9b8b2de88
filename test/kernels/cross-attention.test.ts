// Fused cross-attention on the GPU vs the float64 reference: out and lse (forward), dq, dk, dv (backward).
// Tq != Tk with sizes off the workgroup (1, 7, 63, 65, 129), D in {12, 16, 32, 64}, H in {1, 2, 4, 8}, B in {1, 3},
// padded keys and fully masked batch entries, large logits, self-attention, scale and workgroup overrides,
// accumulate, and shape validation.

import { afterAll, describe, expect, it } from 'vitest';
import { crossAttentionBackward, crossAttentionForward, lengthMask, ref } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { maxAbsScore, out, runAttentionCase, type AttentionCase as Case } from '../helpers/cross-attention-case.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`cross-attention on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  const runCase = (c: Case, opts: Parameters<typeof runAttentionCase>[2] = {}) => runAttentionCase(gpu, c, opts);

  it.each<Case>([
    { B: 1, Tq: 7, Tk: 129, H: 1, D: 16, lengths: null, seed: 1 },
    { B: 3, Tq: 65, Tk: 63, H: 2, D: 32, lengths: [63, 40, 0], seed: 2 },
    { B: 3, Tq: 1, Tk: 65, H: 4, D: 64, lengths: [1, 65, 30], seed: 3 },
    { B: 1, Tq: 63, Tk: 1, H: 8, D: 16, lengths: null, seed: 4 },
    { B: 3, Tq: 129, Tk: 7, H: 8, D: 32, lengths: [7, 0, 3], seed: 5 },
    { B: 1, Tq: 65, Tk: 129, H: 2, D: 64, lengths: [100], seed: 6 },
    { B: 3, Tq: 7, Tk: 1, H: 4, D: 16, lengths: [1, 0, 1], seed: 7 },
    { B: 2, Tq: 9, Tk: 11, H: 3, D: 12, lengths: [11, 5], seed: 8 }, // D/4 = 3: a partial channel block in dk/dv (CB 2)
  ])('forward + backward B=$B Tq=$Tq Tk=$Tk H=$H D=$D lengths=$lengths', async (c) => {
    await runCase(c);
  });

  // The product's kernel version (v6; bench times v1-v5 as numbered variants, test/bench checks them on the
  // same cases) on off-tile sizes, Tq != Tk, padded keys, a fully masked entry, and D 16 / 64.
  it.each([6] as const)('kernel version v%i: forward + backward on masked, off-tile shapes', async (version) => {
    await runCase({ B: 3, Tq: 65, Tk: 63, H: 2, D: 32, lengths: [63, 40, 0], seed: 2 }, { version });
    await runCase({ B: 3, Tq: 129, Tk: 7, H: 8, D: 16, lengths: [7, 0, 3], seed: 5 }, { version });
    await runCase({ B: 1, Tq: 7, Tk: 129, H: 1, D: 64, lengths: [100], seed: 6 }, { version });
  });

  it('the backward in (b, h) chunks (a small P / dS scratch bound) gives the reference result', async () => {
    // 3*2 (b, h) pairs of 65 x 64 scores; a bound of 2 heads' worth runs 3 chunks, 1 head's worth 6.
    for (const heads of [2, 1]) {
      await runCase({ B: 3, Tq: 65, Tk: 63, H: 2, D: 32, lengths: [63, 40, 0], seed: 11 }, { maxScratchElements: heads * 65 * 64 });
    }
  });

  it("a scratch bound below one head's scores is refused with the reason", async () => {
    const [B, Tq, Tk, H, D] = [1, 9, 13, 2, 16];
    const C = H * D;
    const t = (s: number[]) => gpu.empty(s);
    await expect(
      crossAttentionBackward(
        gpu,
        t([B, Tq, C]),
        t([B, Tk, C]),
        t([B, Tk, C]),
        null,
        t([B, Tq, C]),
        t([B, H, Tq]),
        t([B, Tq, C]),
        t([B, Tq, C]),
        t([B, Tk, C]),
        t([B, Tk, C]),
        { heads: H, maxScratchElements: 9 * 16 - 1 },
      ),
    ).rejects.toThrow(/exceed the backward's scratch/);
  });

  it('large logits (scores reach about +-80): stable, no NaN', async () => {
    const c: Case = { B: 3, Tq: 33, Tk: 47, H: 2, D: 32, lengths: [47, 20, 0], gain: 4.5, seed: 8 };
    const { qs, ks } = await runCase(c);
    const m = maxAbsScore(qs, ks, c);
    expect(m).toBeGreaterThan(60);
    expect(m).toBeLessThan(150);
  });

  it('self-attention: q = k = v, one buffer bound three times', async () => {
    await runCase({ B: 3, Tq: 65, Tk: 65, H: 4, D: 16, lengths: [65, 10, 0], seed: 9 }, { selfAttention: true });
  });

  it('scale override and a workgroup size override give the reference result', async () => {
    await runCase({ B: 1, Tq: 33, Tk: 17, H: 2, D: 32, lengths: [13], scale: 0.3, seed: 10 }, { workgroupSize: 16 });
  });

  it('backward accumulates into dq, dk, dv when asked', async () => {
    const [B, Tq, Tk, H, D] = [1, 9, 13, 2, 16];
    const C = H * D;
    const dims = { B, Tq, Tk, H, D };
    const qs = randomF32(B * Tq * C, 21);
    const ks = randomF32(B * Tk * C, 22);
    const vs = randomF32(B * Tk * C, 23);
    const douts = randomF32(B * Tq * C, 24);
    const masks = lengthMask([11], Tk);
    const prior = [randomF32(B * Tq * C, 25), randomF32(B * Tk * C, 26), randomF32(B * Tk * C, 27)] as const;
    const q = gpu.upload(qs, [B, Tq, C]);
    const k = gpu.upload(ks, [B, Tk, C]);
    const v = gpu.upload(vs, [B, Tk, C]);
    const mask = gpu.upload(masks, [B, Tk]);
    const o = out(gpu, [B, Tq, C]);
    const lse = out(gpu, [B, H, Tq]);
    const dq = gpu.upload(prior[0], [B, Tq, C]);
    const dk = gpu.upload(prior[1], [B, Tk, C]);
    const dv = gpu.upload(prior[2], [B, Tk, C]);
    const drow = out(gpu, [B, H, Tq]);
    await crossAttentionForward(gpu, q, k, v, mask, o, lse, { heads: H });
    await crossAttentionBackward(gpu, q, k, v, mask, o, lse, gpu.upload(douts, [B, Tq, C]), dq, dk, dv, {
      heads: H,
      accumulate: true,
      drow,
    });
    const r = ref.crossAttentionForward(qs, ks, vs, masks, dims);
    const g = ref.crossAttentionBackward(qs, ks, vs, masks, r.out, r.lse, douts, dims);
    const plus = (a: Float64Array, p: Float32Array) => a.map((x, i) => x + p[i]!);
    expectClose(await gpu.read(dq), plus(g.dq, prior[0]), TOL.attentionBackward, { name: 'cross-attention.bwd dq accumulate' });
    expectClose(await gpu.read(dk), plus(g.dk, prior[1]), TOL.attentionBackward, { name: 'cross-attention.bwd dk accumulate' });
    expectClose(await gpu.read(dv), plus(g.dv, prior[2]), TOL.attentionBackward, { name: 'cross-attention.bwd dv accumulate' });
    // The caller's Drow scratch was used: it holds rowsum(dout * out).
    const drows = await gpu.read(drow);
    const d0 = Array.from({ length: D }, (_, d) => douts[d]! * r.out[d]!).reduce((a, b) => a + b, 0);
    expect(drows[0]).toBeCloseTo(d0, 4);
  });

  it('rejects bad shapes before dispatch', async () => {
    const t = (...shape: number[]) => gpu.empty(shape);
    const q = t(2, 5, 32);
    const k = t(2, 7, 32);
    const v = t(2, 7, 32);
    const o = t(2, 5, 32);
    const lse = t(2, 4, 5);
    await expect(crossAttentionForward(gpu, q, k, v, null, o, lse, { heads: 3 })).rejects.toThrow(
      /cross-attention\.fwd.*not divisible by heads/,
    );
    await expect(
      crossAttentionForward(gpu, t(2, 5, 24), t(2, 7, 24), t(2, 7, 24), null, t(2, 5, 24), t(2, 4, 5), { heads: 4 }),
    ).rejects.toThrow(/head size D = C\/H = 24\/4 = 6 must be a multiple of 4 and at most 128/);
    await expect(
      crossAttentionForward(gpu, t(1, 2, 264), t(1, 3, 264), t(1, 3, 264), null, t(1, 2, 264), t(1, 2, 2), { heads: 2 }),
    ).rejects.toThrow(/D = C\/H = 264\/2 = 132 must be a multiple of 4 and at most 128/);
    await expect(crossAttentionForward(gpu, q, k, t(2, 6, 32), null, o, lse, { heads: 4 })).rejects.toThrow(
      /v must have shape \[2, 7, 32\]/,
    );
    await expect(crossAttentionForward(gpu, q, t(1, 7, 32), t(1, 7, 32), null, o, lse, { heads: 4 })).rejects.toThrow(
      /k must have shape \[2, 7, 32\]/,
    );
    await expect(crossAttentionForward(gpu, q, k, v, t(2, 5), o, lse, { heads: 4 })).rejects.toThrow(/mask must have shape \[2, 7\]/);
    await expect(crossAttentionForward(gpu, q, k, v, null, o, t(2, 5, 4), { heads: 4 })).rejects.toThrow(/lse must have shape \[2, 4, 5\]/);
    await expect(crossAttentionForward(gpu, q, k, v, null, t(2, 7, 32), lse, { heads: 4 })).rejects.toThrow(
      /out must have shape \[2, 5, 32\]/,
    );
    await expect(crossAttentionForward(gpu, q, k, v, null, q, lse, { heads: 4 })).rejects.toThrow(/same buffer/);
    const dq = t(2, 5, 32);
    const dk = t(2, 7, 32);
    await expect(crossAttentionBackward(gpu, q, k, v, null, o, lse, t(2, 5, 32), dq, dk, dk, { heads: 4 })).rejects.toThrow(/same buffer/);
    await expect(
      crossAttentionBackward(gpu, q, k, v, null, o, lse, t(2, 5, 32), dq, t(2, 5, 32), t(2, 7, 32), { heads: 4 }),
    ).rejects.toThrow(/dk must have shape \[2, 7, 32\]/);
    await expect(
      crossAttentionBackward(gpu, q, k, v, null, o, lse, t(2, 5, 32), dq, dk, t(2, 7, 32), { heads: 4, drow: t(39) }),
    ).rejects.toThrow(/drow scratch must have at least B\*H\*Tq = 40/);
  });
});
