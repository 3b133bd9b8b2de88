// Masked mean over time: y[b, c] = sum_t mask[b, t] x[b, t, c] / max(sum_t mask[b, t], 1) (0 for a fully masked
// row); backward dx[b, t, c] = mask[b, t] dy[b, c] / max(count_b, 1). See shaders/mean-pool.*.wgsl.

import fwdSource from '../../../../shaders/mean-pool.fwd.wgsl';
import bwdSource from '../../../../shaders/mean-pool.bwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectShape } from './check.ts';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';
import { lengthMask } from '../random.ts';

const WG = 256;

export const meanPoolForwardKernel: KernelDef = {
  name: 'mean-pool.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'mask', access: 'read' },
    { name: 'y', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['T', 'u32'],
    ['C', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

export const meanPoolBackwardKernel: KernelDef = {
  name: 'mean-pool.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'mask', access: 'read' },
    { name: 'dy', access: 'read' },
    { name: 'dx', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['T', 'u32'],
    ['C', 'u32'],
    ['accumulate', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

function expect3d(kernel: string, name: string, t: Tensor): void {
  if (t.shape.length !== 3) throw new KernelError(kernel, '', `${name} must be 3-D [B, T, C], got [${t.shape.join(', ')}]`, 'shape');
}

/** x [B, T, C], mask [B, T] (1 keep / 0 pad) -> y [B, C]. */
export async function meanPoolForward(gpu: Gpu, x: Tensor, mask: Tensor, y: Tensor): Promise<void> {
  const k = meanPoolForwardKernel.name;
  expect3d(k, 'x', x);
  const [B, T, C] = x.shape as [number, number, number];
  expectShape(k, 'mask', mask, [B, T]);
  expectShape(k, 'y', y, [B, C]);
  expectDistinct(k, { x, y });
  expectDistinct(k, { mask, y });
  await gpu.dispatch(meanPoolForwardKernel, {
    tensors: [x, mask, y],
    params: { B, T, C },
    grid: [Math.ceil((B * C) / WG)],
    shapes: `B=${B} T=${T} C=${C}`,
  });
}

/** mask [B, T], dy [B, C] -> dx [B, T, C] = mask * dy / max(count, 1), or dx += ... when `accumulate`. */
export async function meanPoolBackward(gpu: Gpu, mask: Tensor, dy: Tensor, dx: Tensor, accumulate = false): Promise<void> {
  const k = meanPoolBackwardKernel.name;
  expect3d(k, 'dx', dx);
  const [B, T, C] = dx.shape as [number, number, number];
  expectShape(k, 'mask', mask, [B, T]);
  expectShape(k, 'dy', dy, [B, C]);
  expectDistinct(k, { mask, dx });
  expectDistinct(k, { dy, dx });
  await gpu.dispatch(meanPoolBackwardKernel, {
    tensors: [mask, dy, dx],
    params: { B, T, C, accumulate: accumulate ? 1 : 0 },
    grid: [Math.ceil((B * C) / WG)],
    shapes: `B=${B} T=${T} C=${C}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const meanPoolOp: Op = {
  name: 'mean-pool',
  kernels: [meanPoolForwardKernel, meanPoolBackwardKernel],
  wrappers: { meanPoolForward, meanPoolBackward },
  checks: [
    caseCheck('mean-pool masked fwd+bwd [3, 47, 64]', TOL.meanPool, (gpu, input) => {
      const [B, T, C] = [3, 47, 64];
      const [xs, dys] = [input(B * T * C, 60), input(B * C, 61)];
      const masks = lengthMask([T, 5, 0], T); // full, short, fully masked
      return {
        in: { x: [xs, [B, T, C]], mask: [masks, [B, T]], dy: [dys, [B, C]] },
        out: { y: [B, C], dx: [B, T, C] },
        run: async (t) => {
          await meanPoolForward(gpu, t.x!, t.mask!, t.y!);
          await meanPoolBackward(gpu, t.mask!, t.dy!, t.dx!);
        },
        want: () => ({ y: ref.meanPoolForward(xs, masks, B, T, C), dx: ref.meanPoolBackward(masks, dys, B, T, C) }),
      };
    }),
  ],
};
