// Dropout with a seeded stateless generator: y = keep ? x / (1 - p) : 0, keep regenerated from (seed, offset + i)
// by a PCG hash, so the backward needs no mask buffer and the CPU reference draws the same mask. See
// shaders/dropout.*.wgsl and ref/dropout.ts.

import fwdSource from '../../../../shaders/dropout.fwd.wgsl';
import bwdSource from '../../../../shaders/dropout.bwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { dropoutThreshold } from '../ref/dropout.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

const WG = 256;

export const dropoutForwardKernel: KernelDef = {
  name: 'dropout.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['seed', 'u32'],
    ['offset', 'u32'],
    ['threshold', 'u32'],
    ['scale', 'f32'],
  ],
  overrides: { WG },
  foldable: true,
};

export const dropoutBackwardKernel: KernelDef = {
  name: 'dropout.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'dy', access: 'read' },
    { name: 'dx', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['seed', 'u32'],
    ['offset', 'u32'],
    ['threshold', 'u32'],
    ['scale', 'f32'],
    ['accumulate', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

export interface DropoutOptions {
  /** Drop probability in [0, 1); 0 is the identity. */
  p: number;
  /** Any u32; the same seed (and offset) gives the same mask on the GPU and in ref.dropoutMask. */
  seed: number;
  /** First counter value (u32); element i uses counter offset + i (wrapping). Default 0. */
  offset?: number;
}

function dropoutParams(kernel: string, n: number, o: DropoutOptions): Record<string, number> {
  let threshold: number;
  try {
    threshold = dropoutThreshold(o.p);
  } catch (err) {
    throw new KernelError(kernel, '', (err as Error).message, 'shape');
  }
  const offset = o.offset ?? 0;
  for (const [name, v] of [
    ['seed', o.seed],
    ['offset', offset],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KernelError(kernel, '', `${name} must be a u32, got ${v}`, 'shape');
  }
  return { n, seed: o.seed, offset, threshold, scale: 1 / (1 - o.p) };
}

/** y = dropout(x): kept elements scaled by 1 / (1 - p), dropped ones 0. Any shape, same size. */
export async function dropoutForward(gpu: Gpu, x: Tensor, y: Tensor, options: DropoutOptions): Promise<void> {
  const k = dropoutForwardKernel.name;
  expectSize(k, 'y', y, x.size);
  expectDistinct(k, { x, y });
  await gpu.dispatch(dropoutForwardKernel, {
    tensors: [x, y],
    params: dropoutParams(k, x.size, options),
    grid: [Math.ceil(x.size / WG)],
    shapes: `x${x} p=${options.p}`,
  });
}

/** dx = dropout mask * dy / (1 - p) with the forward's (p, seed, offset), or dx += ... when `accumulate`. */
export async function dropoutBackward(gpu: Gpu, dy: Tensor, dx: Tensor, options: DropoutOptions, accumulate = false): Promise<void> {
  const k = dropoutBackwardKernel.name;
  expectSize(k, 'dx', dx, dy.size);
  expectDistinct(k, { dy, dx });
  await gpu.dispatch(dropoutBackwardKernel, {
    tensors: [dy, dx],
    params: { ...dropoutParams(k, dy.size, options), accumulate: accumulate ? 1 : 0 },
    grid: [Math.ceil(dy.size / WG)],
    shapes: `dy${dy} p=${options.p}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const dropoutOp: Op = {
  name: 'dropout',
  kernels: [dropoutForwardKernel, dropoutBackwardKernel],
  wrappers: { dropoutForward, dropoutBackward },
  checks: [
    caseCheck('dropout p=0.1 fwd+bwd [64, 257]', TOL.dropout, (gpu, input) => {
      const n = 64 * 257;
      const [xs, dys] = [input(n, 50), input(n, 51)];
      const o = { p: 0.1, seed: 1234, offset: 77 };
      return {
        in: { x: xs, dy: dys },
        out: { y: [n], dx: [n] },
        run: async (t) => {
          await dropoutForward(gpu, t.x!, t.y!, o);
          await dropoutBackward(gpu, t.dy!, t.dx!, o);
        },
        want: () => ({ y: ref.dropoutForward(xs, o.p, o.seed, o.offset), dx: ref.dropoutBackward(dys, o.p, o.seed, o.offset) }),
      };
    }),
  ],
};
