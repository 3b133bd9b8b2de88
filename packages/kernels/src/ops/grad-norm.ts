// Global L2 norm over a list of gradient tensors, reduced to one f32 on the GPU in two stages (per-workgroup partial
// sums of squares into a scratch buffer, then one workgroup sums them and takes the root): no atomics on floats and
// no readback, so clipping inside a training step stays on the GPU. See shaders/grad-norm.*.wgsl.
//
// Accuracy: every partial is a sum of depth ITEMS + log2(WG) = 16 and the final sum adds ceil(P / WG) + log2(WG)
// levels over P partials, all of non-negative terms, so the relative error of the sum of squares is at most about
// (depth + 1) * 2^-24: for n = 1e5 (P = 49) depth 25, about 1.6e-6, half that on the norm. A plain sequential
// f32 loop over 1e5 terms would be bounded only by 1e5 * 2^-24 = 6e-3.

import finalSource from '../../../../shaders/grad-norm.final.wgsl';
import partialSource from '../../../../shaders/grad-norm.partial.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';

const WG = 256;
const ITEMS = 8;
const CHUNK = WG * ITEMS;

export const gradNormPartialKernel: KernelDef = {
  name: 'grad-norm.partial',
  source: partialSource,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'partials', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['offset', 'u32'],
  ],
  overrides: { WG, ITEMS },
  foldable: true,
};

export const gradNormFinalKernel: KernelDef = {
  name: 'grad-norm.final',
  source: finalSource,
  entryPoint: 'main',
  bindings: [
    { name: 'partials', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
  params: [['count', 'u32']],
  overrides: { WG },
};

/** Scratch elements gradNorm needs for these tensors: one partial sum per workgroup of each tensor. */
export function gradNormScratchSize(tensors: readonly Tensor[]): number {
  return tensors.reduce((a, t) => a + Math.ceil(t.size / CHUNK), 0);
}

/** A scratch buffer per device, grown on demand, for calls that pass none. */
const scratchCache = new WeakMap<Gpu, Tensor>();

/**
 * out [1] = sqrt(sum over every tensor of sum x^2). `scratch` (at least gradNormScratchSize(tensors) elements)
 * holds the partial sums; without one a per-device scratch is reused.
 */
export async function gradNorm(gpu: Gpu, tensors: readonly Tensor[], out: Tensor, scratch?: Tensor): Promise<void> {
  const pk = gradNormPartialKernel.name;
  expectSize(gradNormFinalKernel.name, 'out', out, 1);
  const count = gradNormScratchSize(tensors);
  if (scratch) {
    if (scratch.size < count) {
      throw new KernelError(pk, '', `scratch must have at least ${count} elements for these tensors, got ${scratch.size}`, 'shape');
    }
  } else {
    scratch = scratchCache.get(gpu);
    if (!scratch || scratch.size < count) {
      // The old scratch is dropped, not destroyed: dispatches still queued may use it.
      scratch = gpu.empty([Math.max(count, 1024)], 'grad-norm scratch');
      scratchCache.set(gpu, scratch);
    }
  }
  expectDistinct(gradNormFinalKernel.name, { scratch, out });
  let offset = 0;
  for (const [i, x] of tensors.entries()) {
    expectDistinct(pk, { [`tensors[${i}]`]: x, scratch });
    const groups = Math.ceil(x.size / CHUNK);
    if (groups) {
      await gpu.dispatch(gradNormPartialKernel, {
        tensors: [x, scratch],
        params: { n: x.size, offset },
        grid: [groups],
        shapes: `tensors[${i}]${x} offset=${offset}`,
      });
    }
    offset += groups;
  }
  await gpu.dispatch(gradNormFinalKernel, {
    tensors: [scratch, out],
    params: { count },
    grid: [1],
    shapes: `${tensors.length} tensors, ${count} partials`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const gradNormOp: Op = {
  name: 'grad-norm',
  kernels: [gradNormPartialKernel, gradNormFinalKernel],
  wrappers: { gradNorm },
  // Checked inside adamw's case (the clipping norm of every step).
  checks: [],
};
