// AdamW in place over a flat parameter buffer (PyTorch's formula, decoupled weight decay), with an optional
// gradient scale and an optional clip by a global norm that stays on the GPU. See shaders/adamw.fwd.wgsl.

import source from '../../../../shaders/adamw.fwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectPositiveInt, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';
import { gradNorm } from './grad-norm.ts';

const WG = 256;

export const adamwKernel: KernelDef = {
  name: 'adamw.fwd',
  source,
  entryPoint: 'main',
  bindings: [
    { name: 'g', access: 'read' },
    { name: 'grad_norm', access: 'read' },
    { name: 'p', access: 'read_write' },
    { name: 'm', access: 'read_write' },
    { name: 'v', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['lr', 'f32'],
    ['beta1', 'f32'],
    ['beta2', 'f32'],
    ['eps', 'f32'],
    ['weight_decay', 'f32'],
    ['bias_correction1', 'f32'],
    ['bias_correction2', 'f32'],
    ['grad_scale', 'f32'],
    ['max_norm', 'f32'],
  ],
  overrides: { WG },
  foldable: true,
};

export interface AdamwOptions {
  lr: number;
  /** 1-based step count (the bias corrections use 1 - beta^step, computed here in float64). */
  step: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01, as torch.optim.AdamW
  /** Multiplies the gradient (e.g. a clip coefficient computed on the CPU, or 1 / loss scale). Default 1. */
  gradScale?: number;
  /** Clip by a global norm already on the GPU (grad-norm's output [1]): g *= min(1, maxNorm / (norm + 1e-6)). */
  clip?: { norm: Tensor; maxNorm: number };
}

/** One AdamW step: p, m, v [n] updated in place from g [n]. */
export async function adamwStep(gpu: Gpu, p: Tensor, g: Tensor, m: Tensor, v: Tensor, options: AdamwOptions): Promise<void> {
  const k = adamwKernel.name;
  const n = p.size;
  expectSize(k, 'g', g, n);
  expectSize(k, 'm', m, n);
  expectSize(k, 'v', v, n);
  expectDistinct(k, { g, p, m, v });
  const { lr, step, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, gradScale = 1, clip } = options;
  expectPositiveInt(k, 'step', step);
  const bad = (what: string) => new KernelError(k, '', what, 'shape');
  if (!(lr >= 0 && Number.isFinite(lr))) throw bad(`lr must be finite and >= 0, got ${lr}`);
  for (const [name, b] of [
    ['beta1', beta1],
    ['beta2', beta2],
  ] as const) {
    if (!(b >= 0 && b < 1)) throw bad(`${name} must lie in [0, 1), got ${b}`);
  }
  if (!(eps > 0 && Number.isFinite(eps))) throw bad(`eps must be finite and > 0, got ${eps}`);
  if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) throw bad(`weightDecay must be finite and >= 0, got ${weightDecay}`);
  if (!Number.isFinite(gradScale)) throw bad(`gradScale must be finite, got ${gradScale}`);
  if (clip) {
    expectSize(k, 'clip.norm', clip.norm, 1);
    expectDistinct(k, { norm: clip.norm, p, m, v });
    if (!(clip.maxNorm > 0 && Number.isFinite(clip.maxNorm))) throw bad(`clip.maxNorm must be finite and > 0, got ${clip.maxNorm}`);
  }
  await gpu.dispatch(adamwKernel, {
    // Without a clip, g stands in for the unread grad_norm binding (two read-only bindings may share a buffer).
    tensors: [g, clip ? clip.norm : g, p, m, v],
    params: {
      n,
      lr,
      beta1,
      beta2,
      eps,
      weight_decay: weightDecay,
      bias_correction1: 1 - beta1 ** step,
      bias_correction2: 1 - beta2 ** step,
      grad_scale: gradScale,
      max_norm: clip ? clip.maxNorm : 0,
    },
    grid: [Math.ceil(n / WG)],
    shapes: `n=${n} step=${step}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const adamwOp: Op = {
  name: 'adamw',
  kernels: [adamwKernel],
  wrappers: { adamwStep },
  checks: [
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
  ],
};
