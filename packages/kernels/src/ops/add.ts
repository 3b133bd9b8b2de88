// Residual add: out = a + alpha * b. Backward: da = dout, db = alpha * dout (no kernel needed).

import source from '../../../../shaders/add.fwd.wgsl';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
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
    caseCheck('add [64, 257]', TOL.add, (gpu, input) => {
      const n = 64 * 257;
      const [as, bs] = [input(n, 3), input(n, 4)];
      return {
        in: { a: as, b: bs },
        out: { out: [n] },
        run: (t) => addForward(gpu, t.a!, t.b!, t.out!),
        want: () => ({ out: ref.addForward(as, bs) }),
      };
    }),
  ],
};
