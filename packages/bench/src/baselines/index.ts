// The bench's baselines as op-table records (the same shape as the kernels package's ops): the kernels
// `emofuse gpu --check` also compiles, and the unfused path's check against the float64 reference.
// Versions 1-4 of the fused kernel are checked by test/bench (they are not in `gpu --check`'s cases).

import { ATTENTION_CHECK_SHAPE as ATT, TOL, attentionCheckCase, type Op } from '@emofuse/kernels';
import {
  attentionMergeHeadsKernel,
  attentionSplitHeadsKernel,
  attentionUnfusedBackward,
  attentionUnfusedForward,
  createAttentionUnfusedWorkspace,
  destroyAttentionUnfusedWorkspace,
} from './attention-unfused.ts';
import {
  crossAttentionBackwardDkDvRbKernel,
  crossAttentionBackwardDkDvV1Kernel,
  crossAttentionBackwardDqRbKernel,
  crossAttentionBackwardDqV1Kernel,
  crossAttentionBackwardVersion,
  crossAttentionForwardV1Kernel,
  crossAttentionForwardVersion,
} from './cross-attention-versions.ts';

export * from './attention-unfused.ts';
export * from './cross-attention-versions.ts';
export * from './ort-op-by-op.ts';

const C = ATT.H * ATT.D;

export const crossAttentionVersionsBaseline: Op = {
  name: 'cross-attention-versions',
  kernels: [
    crossAttentionForwardV1Kernel,
    crossAttentionBackwardDqV1Kernel,
    crossAttentionBackwardDkDvV1Kernel,
    crossAttentionBackwardDqRbKernel,
    crossAttentionBackwardDkDvRbKernel,
  ],
  wrappers: { crossAttentionForwardVersion, crossAttentionBackwardVersion },
  checks: [],
};

export const attentionUnfusedBaseline: Op = {
  name: 'attention-unfused',
  kernels: [attentionSplitHeadsKernel, attentionMergeHeadsKernel],
  wrappers: { attentionUnfusedForward, attentionUnfusedBackward, createAttentionUnfusedWorkspace, destroyAttentionUnfusedWorkspace },
  checks: [
    {
      name: `attention unfused (baseline) fwd+bwd, same shape`,
      tol: TOL.attentionBackward,
      async run(gpu, input) {
        const { B, H, Tq, Tk } = ATT;
        const { q, k, v, mask, dout, expected } = attentionCheckCase(gpu, input);
        const ws = createAttentionUnfusedWorkspace(gpu, { B, H, Tq, Tk, D: ATT.D });
        const out = gpu.empty([B, Tq, C]);
        const dq = gpu.empty([B, Tq, C]);
        const dk = gpu.empty([B, Tk, C]);
        const dv = gpu.empty([B, Tk, C]);
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
  ],
};

/** Every baseline, for `emofuse gpu --check` (compiled, checked) and the Params-order test. */
export const BASELINES: readonly Op[] = [crossAttentionVersionsBaseline, attentionUnfusedBaseline];
