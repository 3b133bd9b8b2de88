// Concatenation along time: out [B, T1+T2, C] = [a [B, T1, C] ; b [B, T2, C]] (the fusion model's 'concat'
// variant joins text and audio tokens); backward splits dout into da, db (overwrite or accumulate).
// See shaders/concat-time.*.wgsl.

import fwdSource from '../../../../shaders/concat-time.fwd.wgsl';
import bwdSource from '../../../../shaders/concat-time.bwd.wgsl';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/concat-time.ts';
import type { ConcatTimeDims } from '../ref/concat-time.ts';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { TOL } from '../tolerances.ts';
import { expectDistinct, expectSize } from './check.ts';

export type { ConcatTimeDims } from '../ref/concat-time.ts';

const WG = 256;
const dimParams = [
  ['B', 'u32'],
  ['T1', 'u32'],
  ['T2', 'u32'],
  ['C', 'u32'],
] as const;

export const concatTimeForwardKernel: KernelDef = {
  name: 'concat-time.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
  params: dimParams,
  overrides: { WG },
  foldable: true,
};

export const concatTimeBackwardKernel: KernelDef = {
  name: 'concat-time.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'dout', access: 'read' },
    { name: 'da', access: 'read_write' },
    { name: 'db', access: 'read_write' },
  ],
  params: [...dimParams, ['accumulate', 'u32']],
  overrides: { WG },
  foldable: true,
};

function checkSizes(k: string, a: Tensor, b: Tensor, out: Tensor, { B, T1, T2, C }: ConcatTimeDims): number {
  expectSize(k, 'a', a, B * T1 * C);
  expectSize(k, 'b', b, B * T2 * C);
  expectSize(k, 'out', out, B * (T1 + T2) * C);
  return out.size;
}

/** out [B, T1+T2, C] = a [B, T1, C] then b [B, T2, C] along time, per batch entry. */
export async function concatTimeForward(gpu: Gpu, a: Tensor, b: Tensor, out: Tensor, dims: ConcatTimeDims): Promise<void> {
  const k = concatTimeForwardKernel.name;
  const n = checkSizes(k, a, b, out, dims);
  expectDistinct(k, { a, out });
  expectDistinct(k, { b, out });
  await gpu.dispatch(concatTimeForwardKernel, {
    tensors: [a, b, out],
    params: { ...dims },
    grid: [Math.ceil(n / WG)],
    shapes: `B=${dims.B} T1=${dims.T1} T2=${dims.T2} C=${dims.C}`,
  });
}

/** da = dout[:, :T1], db = dout[:, T1:] (or +=, when `accumulate`). */
export async function concatTimeBackward(
  gpu: Gpu,
  dout: Tensor,
  da: Tensor,
  db: Tensor,
  dims: ConcatTimeDims,
  accumulate = false,
): Promise<void> {
  const k = concatTimeBackwardKernel.name;
  const n = checkSizes(k, da, db, dout, dims);
  expectDistinct(k, { dout, da, db });
  await gpu.dispatch(concatTimeBackwardKernel, {
    tensors: [dout, da, db],
    params: { ...dims, accumulate: accumulate ? 1 : 0 },
    grid: [Math.ceil(n / WG)],
    shapes: `B=${dims.B} T1=${dims.T1} T2=${dims.T2} C=${dims.C}`,
  });
}

const DIMS: ConcatTimeDims = { B: 3, T1: 5, T2: 7, C: 13 };

export const concatTimeOp: Op = {
  name: 'concat-time',
  kernels: [concatTimeForwardKernel, concatTimeBackwardKernel],
  wrappers: { concatTimeForward, concatTimeBackward },
  checks: [
    caseCheck(`concat-time fwd+bwd B=${DIMS.B} T1=${DIMS.T1} T2=${DIMS.T2} C=${DIMS.C}`, TOL.concatTime, (gpu, input) => {
      const { B, T1, T2, C } = DIMS;
      const [as, bs, douts] = [input(B * T1 * C, 92), input(B * T2 * C, 93), input(B * (T1 + T2) * C, 94)];
      const g = () => ref.concatTimeBackward(douts, DIMS);
      return {
        in: { a: as, b: bs, dout: douts },
        out: { out: [B, T1 + T2, C], da: [B, T1, C], db: [B, T2, C] },
        run: async (t) => {
          await concatTimeForward(gpu, t.a!, t.b!, t.out!, DIMS);
          await concatTimeBackward(gpu, t.dout!, t.da!, t.db!, DIMS);
        },
        want: () => ({ out: ref.concatTimeForward(as, bs, DIMS), da: g().da, db: g().db }),
      };
    }),
  ],
};
