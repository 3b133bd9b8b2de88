// Embedding gather by token id: out[n, c] = table[ids[n], c]; backward, the scatter-add
// dtable[v, c] (+)= sum over n with ids[n] = v of dout[n, c]. ids are f32 integers (exact below 2^24: any vocabulary).
// See shaders/embedding.*.wgsl.

import fwdSource from '../../../../shaders/embedding.fwd.wgsl';
import bwdSource from '../../../../shaders/embedding.bwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

const WG = 256;
const WG_BWD = 64;

export const embeddingForwardKernel: KernelDef = {
  name: 'embedding.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'table', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
  params: [
    ['N', 'u32'],
    ['V', 'u32'],
    ['C', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

export const embeddingBackwardKernel: KernelDef = {
  name: 'embedding.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'dout', access: 'read' },
    { name: 'dtable', access: 'read_write' },
  ],
  params: [
    ['N', 'u32'],
    ['V', 'u32'],
    ['C', 'u32'],
    ['accumulate', 'u32'],
  ],
  overrides: { WG: WG_BWD },
  foldable: true,
};

function tableDims(kernel: string, table: Tensor): [number, number] {
  if (table.shape.length !== 2) throw new KernelError(kernel, '', `table must be 2-D [V, C], got [${table.shape.join(', ')}]`, 'shape');
  return table.shape as [number, number];
}

/** ids [N] (any shape), table [V, C] -> out [N, C] (any shape of N * C elements). */
export async function embeddingForward(gpu: Gpu, ids: Tensor, table: Tensor, out: Tensor): Promise<void> {
  const k = embeddingForwardKernel.name;
  const [V, C] = tableDims(k, table);
  const N = ids.size;
  expectSize(k, 'out', out, N * C);
  expectDistinct(k, { ids, out });
  expectDistinct(k, { table, out });
  await gpu.dispatch(embeddingForwardKernel, {
    tensors: [ids, table, out],
    params: { N, V, C },
    grid: [Math.ceil((N * C) / WG)],
    shapes: `N=${N} V=${V} C=${C}`,
  });
}

/** ids [N], dout [N, C] -> dtable [V, C] (overwritten: zeros where no id points), or dtable += ... when `accumulate`. */
export async function embeddingBackward(gpu: Gpu, ids: Tensor, dout: Tensor, dtable: Tensor, accumulate = false): Promise<void> {
  const k = embeddingBackwardKernel.name;
  const [V, C] = tableDims(k, dtable);
  const N = ids.size;
  expectSize(k, 'dout', dout, N * C);
  expectDistinct(k, { ids, dtable });
  expectDistinct(k, { dout, dtable });
  await gpu.dispatch(embeddingBackwardKernel, {
    tensors: [ids, dout, dtable],
    params: { N, V, C, accumulate: accumulate ? 1 : 0 },
    grid: [Math.ceil(C / WG_BWD)],
    shapes: `N=${N} V=${V} C=${C}`,
  });
}

/** Token ids for checks: n ids in [0, V), with repeats (the scatter-add's interesting case). */
function someIds(n: number, V: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (i * 7 + ((i * i) % 5)) % V);
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const embeddingOp: Op = {
  name: 'embedding',
  kernels: [embeddingForwardKernel, embeddingBackwardKernel],
  wrappers: { embeddingForward, embeddingBackward },
  checks: [
    caseCheck('embedding gather + scatter-add [N 93, V 37, C 36]', TOL.embedding, (gpu, input) => {
      const [N, V, C] = [93, 37, 36];
      const ids = someIds(N, V);
      const [table, dout] = [input(V * C, 70), input(N * C, 71)];
      return {
        in: { ids: [ids, [N]], table: [table, [V, C]], dout: [dout, [N, C]] },
        out: { out: [N, C], dtable: [V, C] },
        run: async (t) => {
          await embeddingForward(gpu, t.ids!, t.table!, t.out!);
          await embeddingBackward(gpu, t.ids!, t.dout!, t.dtable!);
        },
        want: () => ({ out: ref.embeddingForward(ids, table, V, C), dtable: ref.embeddingBackward(ids, dout, V, C) }),
      };
    }),
  ],
};
