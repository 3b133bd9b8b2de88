// Residual add: out = a + alpha * b. Backward: da = dout, db = alpha * dout (no kernel needed).

import source from '../../../../shaders/add.fwd.wgsl';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

const WG = 256;

export const addForwardKernel: KernelDef = {
  name: 'add.fwd',
  source,
  entryPoint: 'main',
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
  params: [
    ['n', 'u32'],
    ['alpha', 'f32'],
  ],
  overrides: { WG },
  foldable: true,
};

export async function addForward(gpu: Gpu, a: Tensor, b: Tensor, out: Tensor, alpha = 1): Promise<void> {
  const k = addForwardKernel.name;
  expectSize(k, 'b', b, a.size);
  expectSize(k, 'out', out, a.size);
  expectDistinct(k, { a, out });
  expectDistinct(k, { b, out });
  await gpu.dispatch(addForwardKernel, {
    tensors: [a, b, out],
    params: { n: a.size, alpha },
    grid: [Math.ceil(a.size / 4 / WG)],
    shapes: `a${a} alpha=${alpha}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const addOp: Op = {
  name: 'add',
  kernels: [addForwardKernel],
  wrappers: { addForward },
  checks: [
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
  ],
};
