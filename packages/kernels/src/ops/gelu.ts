// GELU, tanh form (the default) or exact erf form (BERT's). Forward y = gelu(x); backward dx (+)= dy * gelu'(x).
// See shaders/gelu.*.wgsl and ref/gelu.ts.

import fwdSource from '../../../../shaders/gelu.fwd.wgsl';
import bwdSource from '../../../../shaders/gelu.bwd.wgsl';
import erfSource from '../../../../shaders/gelu.erf.wgsl';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/index.ts';
import type { GeluForm } from '../ref/gelu.ts';
import { TOL } from '../tolerances.ts';

const WG = 256;

/** erf_f32 (shaders/gelu.erf.wgsl), appended to every shader with the exact GELU form: WGSL has no includes. */
export const ERF_WGSL: string = erfSource;

export const geluForwardKernel: KernelDef = {
  name: 'gelu.fwd',
  source: `${fwdSource}\n${ERF_WGSL}`,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['erf', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

export const geluBackwardKernel: KernelDef = {
  name: 'gelu.bwd',
  source: `${bwdSource}\n${ERF_WGSL}`,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'dy', access: 'read' },
    { name: 'dx', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['accumulate', 'u32'],
    ['erf', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

export type { GeluForm } from '../ref/gelu.ts';

/** y = gelu(x), any shape, same size. */
export async function geluForward(gpu: Gpu, x: Tensor, y: Tensor, form: GeluForm = 'tanh'): Promise<void> {
  const k = geluForwardKernel.name;
  expectSize(k, 'y', y, x.size);
  expectDistinct(k, { x, y });
  await gpu.dispatch(geluForwardKernel, {
    tensors: [x, y],
    params: { n: x.size, erf: form === 'erf' ? 1 : 0 },
    grid: [Math.ceil(x.size / WG)],
    shapes: `x${x} y${y}`,
  });
}

/** dx = dy * gelu'(x), or dx += ... when `accumulate`. */
export async function geluBackward(
  gpu: Gpu,
  x: Tensor,
  dy: Tensor,
  dx: Tensor,
  accumulate = false,
  form: GeluForm = 'tanh',
): Promise<void> {
  const k = geluBackwardKernel.name;
  expectSize(k, 'dy', dy, x.size);
  expectSize(k, 'dx', dx, x.size);
  expectDistinct(k, { x, dy, dx });
  await gpu.dispatch(geluBackwardKernel, {
    tensors: [x, dy, dx],
    params: { n: x.size, accumulate: accumulate ? 1 : 0, erf: form === 'erf' ? 1 : 0 },
    grid: [Math.ceil(x.size / WG)],
    shapes: `x${x}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const geluOp: Op = {
  name: 'gelu',
  kernels: [geluForwardKernel, geluBackwardKernel],
  wrappers: { geluForward, geluBackward },
  checks: [
    caseCheck('gelu fwd+bwd [64, 256]', TOL.gelu, (gpu, input) => {
      const n = 64 * 256;
      const [xs, dys] = [input(n, 1), input(n, 2)];
      return {
        in: { x: xs, dy: dys },
        out: { y: [n], dx: [n] },
        run: async (t) => {
          await geluForward(gpu, t.x!, t.y!);
          await geluBackward(gpu, t.x!, t.dy!, t.dx!);
        },
        want: () => ({ y: ref.geluForward(xs), dx: ref.geluBackward(xs, dys) }),
      };
    }),
    caseCheck('gelu erf form fwd+bwd [64, 256]', TOL.gelu, (gpu, input) => {
      const n = 64 * 256;
      const [xs, dys] = [input(n, 3), input(n, 4)];
      return {
        in: { x: xs, dy: dys },
        out: { y: [n], dx: [n] },
        run: async (t) => {
          await geluForward(gpu, t.x!, t.y!, 'erf');
          await geluBackward(gpu, t.x!, t.dy!, t.dx!, false, 'erf');
        },
        want: () => ({ y: ref.geluForward(xs, 'erf'), dx: ref.geluBackward(xs, dys, 'erf') }),
      };
    }),
  ],
};
