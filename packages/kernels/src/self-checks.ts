// The list of numerical self-checks, one per op, at a small model-like shape. Tolerances come from the same
// table as the tests (tolerances.ts).

import { adamwStep } from './ops/adamw.ts';
import { addForward } from './ops/add.ts';
import { crossEntropyForwardBackward } from './ops/cross-entropy.ts';
import { dropoutBackward, dropoutForward } from './ops/dropout.ts';
import { gradNorm } from './ops/grad-norm.ts';
import { meanPoolBackward, meanPoolForward } from './ops/mean-pool.ts';
import { attentionUnfusedBackward, attentionUnfusedForward, createAttentionUnfusedWorkspace, destroyAttentionUnfusedWorkspace } from './ops/attention-unfused.ts';
import { crossAttentionBackward, crossAttentionForward } from './ops/cross-attention.ts';
import { geluBackward, geluForward } from './ops/gelu.ts';
import { layerNormBackward, layerNormForward } from './ops/layer-norm.ts';
import { matmulBackward, matmulForward } from './ops/matmul.ts';
import { softmaxBackward, softmaxForward } from './ops/softmax.ts';
import { lengthMask } from './random.ts';
import * as ref from './ref/index.ts';
import type { Gpu } from './runtime/gpu.ts';
import type { SelfCheck } from './self-check.ts';
import { TOL } from './tolerances.ts';

// The model's attention shape, small: B=2, H=4, Tq=33 text tokens, Tk=47 audio tokens, D=16 (C=64);
// the second batch entry has its last keys padded.
const ATT = { B: 2, H: 4, Tq: 33, Tk: 47, D: 16 };
const ATT_C = ATT.H * ATT.D;

/** Seeded q, k, v, mask, dout on the GPU at the ATT shape, and their float64 reference results. */
function attentionCase(gpu: Gpu, input: (n: number, salt: number) => Float32Array) {
  const { B, H, Tq, Tk, D } = ATT;
  const qs = input(B * Tq * ATT_C, 20);
  const ks = input(B * Tk * ATT_C, 21);
  const vs = input(B * Tk * ATT_C, 22);
  const douts = input(B * Tq * ATT_C, 23);
  const masks = lengthMask([Tk, Tk - 9], Tk);
  return {
    q: gpu.upload(qs, [B, Tq, ATT_C]),
    k: gpu.upload(ks, [B, Tk, ATT_C]),
    v: gpu.upload(vs, [B, Tk, ATT_C]),
    mask: gpu.upload(masks, [B, Tk]),
    dout: gpu.upload(douts, [B, Tq, ATT_C]),
    expected() {
      const f = ref.crossAttentionForward(qs, ks, vs, masks, { B, Tq, Tk, H, D });
      const g = ref.crossAttentionBackward(qs, ks, vs, masks, f.out, f.lse, douts, { B, Tq, Tk, H, D });
      return { f, g };
    },
  };
}

export const SELF_CHECKS: SelfCheck[] = [
  {
    name: 'matmul fwd+bias+gelu, bwd [130,96]@[96,67]',
    tol: TOL.matmulBackward,
    async run(gpu, input) {
      const dims = { batch: 1, M: 130, N: 67, K: 96 };
      const as = input(dims.M * dims.K, 10);
      const bs = input(dims.K * dims.N, 11);
      const biases = input(dims.N, 12);
      const dcs = input(dims.M * dims.N, 13);
      const a = gpu.upload(as);
      const b = gpu.upload(bs);
      const c = gpu.empty([dims.M * dims.N]);
      const pre = gpu.empty([dims.M * dims.N]);
      const dA = gpu.empty([dims.M * dims.K]);
      const dB = gpu.empty([dims.K * dims.N]);
      const dBias = gpu.empty([dims.N]);
      for (const t of [c, pre, dA, dB, dBias]) gpu.poison(t);
      await matmulForward(gpu, a, b, c, dims, { bias: gpu.upload(biases), gelu: true, pre, broadcastB: true });
      await matmulBackward(gpu, { dc: gpu.upload(dcs), a, b, dA, dB, dBias }, dims, { broadcastB: true });
      const f = ref.matmulForward(as, bs, dims, { bias: biases, gelu: true, broadcastB: true });
      const g = ref.matmulBackward(dcs, as, bs, dims, { broadcastB: true });
      return [
        [await gpu.read(c), f.out],
        [await gpu.read(pre), f.pre],
        [await gpu.read(dA), g.dA],
        [await gpu.read(dB), g.dB],
        [await gpu.read(dBias), g.dBias],
      ];
    },
  },
  {
    name: `cross-attention fused fwd+bwd B=${ATT.B} H=${ATT.H} Tq=${ATT.Tq} Tk=${ATT.Tk} D=${ATT.D}`,
    tol: TOL.attentionBackward,
    async run(gpu, input) {
      const { B, H, Tq, Tk } = ATT;
      const { q, k, v, mask, dout, expected } = attentionCase(gpu, input);
      const out = gpu.empty([B, Tq, ATT_C]);
      const lse = gpu.empty([B, H, Tq]);
      const dq = gpu.empty([B, Tq, ATT_C]);
      const dk = gpu.empty([B, Tk, ATT_C]);
      const dv = gpu.empty([B, Tk, ATT_C]);
      for (const t of [out, lse, dq, dk, dv]) gpu.poison(t);
      await crossAttentionForward(gpu, q, k, v, mask, out, lse, { heads: H });
      await crossAttentionBackward(gpu, q, k, v, mask, out, lse, dout, dq, dk, dv, { heads: H });
      const { f, g } = expected();
      return [
        [await gpu.read(out), f.out],
        [await gpu.read(lse), f.lse],
        [await gpu.read(dq), g.dq],
        [await gpu.read(dk), g.dk],
        [await gpu.read(dv), g.dv],
      ];
    },
  },
  {
    name: `attention unfused (baseline) fwd+bwd, same shape`,
    tol: TOL.attentionBackward,
    async run(gpu, input) {
      const { B, H, Tq, Tk } = ATT;
      const { q, k, v, mask, dout, expected } = attentionCase(gpu, input);
      const ws = createAttentionUnfusedWorkspace(gpu, { B, H, Tq, Tk, D: ATT.D });
      const out = gpu.empty([B, Tq, ATT_C]);
      const dq = gpu.empty([B, Tq, ATT_C]);
      const dk = gpu.empty([B, Tk, ATT_C]);
      const dv = gpu.empty([B, Tk, ATT_C]);
      for (const t of [out, dq, dk, dv]) gpu.poison(t);
      try {
        await attentionUnfusedForward(gpu, q, k, v, mask, out, ws, { heads: H });
        await attentionUnfusedBackward(gpu, dout, dq, dk, dv, ws, { heads: H });
        const { f, g } = expected();
        return [
          [await gpu.read(out), f.out],
          [await gpu.read(dq), g.dq],
          [await gpu.read(dk), g.dk],
          [await gpu.read(dv), g.dv],
        ];
      } finally {
        destroyAttentionUnfusedWorkspace(ws);
      }
    },
  },
  {
    name: 'softmax masked, scaled fwd+bwd [2*4*33, 47]',
    tol: TOL.softmaxBackward,
    async run(gpu, input) {
      const { B, H, Tq, Tk } = ATT;
      const R = B * H * Tq;
      const xs = input(R * Tk, 30).map((v) => v * 20); // logits up to +-40 after scale 1
      const dys = input(R * Tk, 31);
      const masks = lengthMask([Tk, 0], Tk); // second batch entry fully masked: zeros
      const x = gpu.upload(xs, [R, Tk]);
      const y = gpu.empty([R, Tk]);
      const dx = gpu.empty([R, Tk]);
      gpu.poison(y);
      gpu.poison(dx);
      const opts = { mask: gpu.upload(masks, [B, Tk]), rowsPerMaskRow: H * Tq, scale: 0.5 };
      await softmaxForward(gpu, x, y, opts);
      await softmaxBackward(gpu, y, gpu.upload(dys, [R, Tk]), dx, opts);
      const yr = ref.softmaxForward(xs, R, Tk, { mask: masks, rowsPerMaskRow: H * Tq, scale: 0.5 });
      return [
        [await gpu.read(y), yr],
        [await gpu.read(dx), ref.softmaxBackward(yr, dys, R, Tk, 0.5)],
      ];
    },
  },
  {
    name: 'layer-norm fwd+bwd [130, 256]',
    tol: TOL.layerNormBackward,
    async run(gpu, input) {
      const R = 130;
      const C = 256;
      const xs = input(R * C, 40);
      const gs = input(C, 41);
      const bs = input(C, 42);
      const dys = input(R * C, 43);
      const x = gpu.upload(xs, [R, C]);
      const gamma = gpu.upload(gs);
      const [y, dx] = [gpu.empty([R, C]), gpu.empty([R, C])];
      const [mean, rstd] = [gpu.empty([R]), gpu.empty([R])];
      const [dgamma, dbeta] = [gpu.empty([C]), gpu.empty([C])];
      for (const t of [y, dx, mean, rstd, dgamma, dbeta]) gpu.poison(t);
      await layerNormForward(gpu, x, gamma, gpu.upload(bs), y, mean, rstd);
      await layerNormBackward(gpu, x, gamma, mean, rstd, gpu.upload(dys, [R, C]), dx, dgamma, dbeta);
      const f = ref.layerNormForward(xs, gs, bs, R, C);
      const g = ref.layerNormBackward(xs, gs, f.mean, f.rstd, dys, R, C);
      return [
        [await gpu.read(y), f.y],
        [await gpu.read(mean), f.mean],
        [await gpu.read(rstd), f.rstd],
        [await gpu.read(dx), g.dx],
        [await gpu.read(dgamma), g.dgamma],
        [await gpu.read(dbeta), g.dbeta],
      ];
    },
  },
  {
    name: 'gelu fwd+bwd [64, 256]',
    tol: TOL.gelu,
    async run(gpu, input) {
      const n = 64 * 256;
      const xs = input(n, 1);
      const dys = input(n, 2);
      const x = gpu.upload(xs);
      const y = gpu.empty([n]);
      const dx = gpu.empty([n]);
      gpu.poison(y);
      gpu.poison(dx);
      await geluForward(gpu, x, y);
      await geluBackward(gpu, x, gpu.upload(dys), dx);
      return [
        [await gpu.read(y), ref.geluForward(xs)],
        [await gpu.read(dx), ref.geluBackward(xs, dys)],
      ];
    },
  },
  {
    name: 'add [64, 257]',
    tol: TOL.add,
    async run(gpu, input) {
      const n = 64 * 257;
      const as = input(n, 3);
      const bs = input(n, 4);
      const out = gpu.empty([n]);
      gpu.poison(out);
      await addForward(gpu, gpu.upload(as), gpu.upload(bs), out);
      return [[await gpu.read(out), ref.addForward(as, bs)]];
    },
  },
  {
    name: 'dropout p=0.1 fwd+bwd [64, 257]',
    tol: TOL.dropout,
    async run(gpu, input) {
      const n = 64 * 257;
      const xs = input(n, 50);
      const dys = input(n, 51);
      const opts = { p: 0.1, seed: 1234, offset: 77 };
      const [y, dx] = [gpu.empty([n]), gpu.empty([n])];
      gpu.poison(y);
      gpu.poison(dx);
      await dropoutForward(gpu, gpu.upload(xs), y, opts);
      await dropoutBackward(gpu, gpu.upload(dys), dx, opts);
      return [
        [await gpu.read(y), ref.dropoutForward(xs, opts.p, opts.seed, opts.offset)],
        [await gpu.read(dx), ref.dropoutBackward(dys, opts.p, opts.seed, opts.offset)],
      ];
    },
  },
  {
    name: 'mean-pool masked fwd+bwd [3, 47, 64]',
    tol: TOL.meanPool,
    async run(gpu, input) {
      const [B, T, C] = [3, 47, 64];
      const xs = input(B * T * C, 60);
      const dys = input(B * C, 61);
      const masks = lengthMask([T, 5, 0], T); // full, short, fully masked
      const mask = gpu.upload(masks, [B, T]);
      const y = gpu.empty([B, C]);
      const dx = gpu.empty([B, T, C]);
      gpu.poison(y);
      gpu.poison(dx);
      await meanPoolForward(gpu, gpu.upload(xs, [B, T, C]), mask, y);
      await meanPoolBackward(gpu, mask, gpu.upload(dys, [B, C]), dx);
      return [
        [await gpu.read(y), ref.meanPoolForward(xs, masks, B, T, C)],
        [await gpu.read(dx), ref.meanPoolBackward(masks, dys, B, T, C)],
      ];
    },
  },
  {
    name: 'cross-entropy weighted, loss+dlogits [33, 7]',
    tol: TOL.crossEntropy,
    async run(gpu, input) {
      const [B, K] = [33, 7];
      const zs = input(B * K, 70).map((v) => v * 20);
      const labels = Array.from({ length: B }, (_, b) => (b === 5 ? -1 : (b * 3) % K));
      const ws = Float32Array.from(input(K, 71), (v) => 1 + Math.abs(v));
      const [loss, dlogits, losses] = [gpu.empty([1]), gpu.empty([B, K]), gpu.empty([B])];
      for (const t of [loss, dlogits, losses]) gpu.poison(t);
      await crossEntropyForwardBackward(gpu, gpu.upload(zs, [B, K]), labels, gpu.upload(ws), loss, dlogits, losses);
      const f = ref.crossEntropyForward(zs, labels, ws, B, K);
      return [
        [await gpu.read(loss), [f.loss]],
        [await gpu.read(dlogits), ref.crossEntropyBackward(zs, labels, ws, B, K)],
      ];
    },
  },
  {
    name: 'adamw 3 steps, grad-norm clipping [10007]',
    tol: TOL.adamw,
    async run(gpu, input) {
      const n = 10007;
      let ps: ArrayLike<number> = input(n, 80);
      let ms: ArrayLike<number> = new Float64Array(n);
      let vs: ArrayLike<number> = new Float64Array(n);
      const p = gpu.upload(Float32Array.from(ps));
      const m = gpu.zeros([n]);
      const v = gpu.zeros([n]);
      const norm = gpu.empty([1]);
      const pairs: Array<[ArrayLike<number>, ArrayLike<number>]> = [];
      for (let step = 1; step <= 3; step++) {
        const gs = input(n, 81 + step);
        const g = gpu.upload(gs);
        await gradNorm(gpu, [g], norm);
        const o = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step };
        await adamwStep(gpu, p, g, m, v, { ...o, clip: { norm, maxNorm: 1 } });
        const gnorm = ref.gradNormForward([gs]);
        pairs.push([await gpu.read(norm), [gnorm]]);
        ({ p: ps, m: ms, v: vs } = ref.adamwStep(ps, gs, ms, vs, { ...o, maxNorm: 1, gradNorm: gnorm }));
      }
      pairs.push([await gpu.read(p), ps], [await gpu.read(m), ms], [await gpu.read(v), vs]);
      return pairs;
    },
  },
];
