// axpy: y += alpha * x, elementwise (the fusion model's backward, where a gradient reaches one activation
// along two paths). No backward kernel (dx = alpha * dy is itself an axpy). See shaders/axpy.fwd.wgsl.

import source from '../../../../shaders/axpy.fwd.wgsl';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/axpy.ts';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { TOL } from '../tolerances.ts';
import { expectDistinct, expectSize } from './check.ts';

const WG = 256;

export const axpyKernel: KernelDef = {
  name: 'axpy.fwd',
  source,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['alpha', 'f32'],
  ],
  overrides: { WG },
  foldable: true,
};

/** y += alpha * x, any shape, same size. */
export async function axpy(gpu: Gpu, x: Tensor, y: Tensor, alpha = 1): Promise<void> {
  const k = axpyKernel.name;
  expectSize(k, 'y', y, x.size);
  expectDistinct(k, { x, y });
  await gpu.dispatch(axpyKernel, {
    tensors: [x, y],
    params: { n: x.size, alpha },
    grid: [Math.ceil(x.size / WG)],
    shapes: `x${x} alpha=${alpha}`,
  });
}

export const axpyOp: Op = {
  name: 'axpy',
  kernels: [axpyKernel],
  wrappers: { axpy },
  checks: [
    caseCheck('axpy alpha=-0.75 [37, 13]', TOL.axpy, (_gpu, input) => {
      const [xs, ys] = [input(37 * 13, 90), input(37 * 13, 91)];
      return { in: { x: xs }, out: { y: ys }, run: (t) => axpy(_gpu, t.x!, t.y!, -0.75), want: () => ({ y: ref.axpy(xs, ys, -0.75) }) };
    }),
  ],
};
