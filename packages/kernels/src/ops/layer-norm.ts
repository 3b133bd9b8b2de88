// Layer norm over the last axis (llm.c layernorm): forward y = (x - mean) * rstd * gamma + beta, saving
// mean and rstd; backward dx and dgamma / dbeta (the latter optionally accumulated). See shaders/layer-norm.*.wgsl.

import fwdSource from '../../../../shaders/layer-norm.fwd.wgsl';
import bwdSource from '../../../../shaders/layer-norm.bwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectShape, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

/** Rows per workgroup (forward, dx) or columns per workgroup (dgamma / dbeta). */
const WG = 64;

export const layerNormForwardKernel: KernelDef = {
  name: 'layer-norm.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'gamma', access: 'read' },
    { name: 'beta', access: 'read' },
    { name: 'y', access: 'read_write' },
    { name: 'mean', access: 'read_write' },
    { name: 'rstd', access: 'read_write' },
  ],
  params: [
    ['R', 'u32'],
    ['C', 'u32'],
    ['eps', 'f32'],
  ],
  overrides: { WG },
  foldable: true,
};

const bwdBindings = [
  { name: 'x', access: 'read' },
  { name: 'gamma', access: 'read' },
  { name: 'mean', access: 'read' },
  { name: 'rstd', access: 'read' },
  { name: 'dy', access: 'read' },
  { name: 'dx', access: 'read_write' },
  { name: 'dgamma', access: 'read_write' },
  { name: 'dbeta', access: 'read_write' },
] as const;
const bwdParams = [
  ['R', 'u32'],
  ['C', 'u32'],
  ['accumulate', 'u32'],
] as const;

/** dx, one invocation per row. */
export const layerNormBackwardKernel: KernelDef = {
  name: 'layer-norm.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: bwdBindings,
  params: bwdParams,
  overrides: { WG },
  foldable: true,
};

/** dgamma, dbeta: one invocation per column sums over all rows (no atomics). */
export const layerNormBackwardParamsKernel: KernelDef = {
  name: 'layer-norm.bwd.dgamma',
  source: bwdSource,
  entryPoint: 'dgamma_dbeta',
  bindings: bwdBindings,
  params: bwdParams,
  overrides: { WG },
  foldable: true,
};

function rowsOf(kernel: string, x: Tensor): { R: number; C: number } {
  if (x.shape.length < 1) throw new KernelError(kernel, '', `x must have at least one axis, got [${x.shape.join(', ')}]`, 'shape');
  const C = x.shape[x.shape.length - 1]!;
  return { R: C === 0 ? 0 : x.size / C, C };
}

/** x [..., C] -> y (same shape), mean [R], rstd [R] with R = x.size / C; gamma, beta [C]. */
export async function layerNormForward(
  gpu: Gpu,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  eps = 1e-5,
): Promise<void> {
  const k = layerNormForwardKernel.name;
  const { R, C } = rowsOf(k, x);
  expectShape(k, 'gamma', gamma, [C]);
  expectShape(k, 'beta', beta, [C]);
  expectSize(k, 'y', y, x.size);
  expectSize(k, 'mean', mean, R);
  expectSize(k, 'rstd', rstd, R);
  expectDistinct(k, { x, y, mean, rstd });
  expectDistinct(k, { gamma, y, mean, rstd });
  expectDistinct(k, { beta, y, mean, rstd });
  if (!(eps > 0)) throw new KernelError(k, '', `eps must be positive, got ${eps}`, 'shape');
  await gpu.dispatch(layerNormForwardKernel, {
    tensors: [x, gamma, beta, y, mean, rstd],
    params: { R, C, eps },
    grid: [Math.ceil(R / WG)],
    shapes: `x${x} eps=${eps}`,
  });
}

/**
 * From dy [..., C] and the forward's x, gamma, mean, rstd: dx (overwritten), and dgamma, dbeta [C]
 * (overwritten, or added into when `accumulate`). Two dispatches: dx per row, then dgamma/dbeta per column.
 */
export async function layerNormBackward(
  gpu: Gpu,
  x: Tensor,
  gamma: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dy: Tensor,
  dx: Tensor,
  dgamma: Tensor,
  dbeta: Tensor,
  accumulate = false,
): Promise<void> {
  const k = layerNormBackwardKernel.name;
  const { R, C } = rowsOf(k, x);
  expectShape(k, 'gamma', gamma, [C]);
  expectSize(k, 'mean', mean, R);
  expectSize(k, 'rstd', rstd, R);
  expectSize(k, 'dy', dy, x.size);
  expectSize(k, 'dx', dx, x.size);
  expectShape(k, 'dgamma', dgamma, [C]);
  expectShape(k, 'dbeta', dbeta, [C]);
  const outs = { dx, dgamma, dbeta };
  for (const [name, t] of Object.entries({ x, gamma, mean, rstd, dy })) expectDistinct(k, { [name]: t, ...outs });
  const args = {
    tensors: [x, gamma, mean, rstd, dy, dx, dgamma, dbeta],
    params: { R, C, accumulate: accumulate ? 1 : 0 },
    shapes: `x${x} accumulate=${accumulate}`,
  };
  await gpu.dispatch(layerNormBackwardKernel, { ...args, grid: [Math.ceil(R / WG)] });
  await gpu.dispatch(layerNormBackwardParamsKernel, { ...args, grid: [Math.ceil(C / WG)] });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const layerNormOp: Op = {
  name: 'layer-norm',
  kernels: [layerNormForwardKernel, layerNormBackwardKernel, layerNormBackwardParamsKernel],
  wrappers: { layerNormForward, layerNormBackward },
  checks: [
    {
      name: 'layer-norm fwd+bwd [130, 256]',
      tol: TOL.layerNormBackward,
      async run(gpu, input) {
        const R = 130;
        const C = 256;
        const xs = input(R * C, 40);
        const gs = input(C, 41);
        const bs = input(C, 42);
        const dys = input(R * C, 43);
        const x = gpu.upload(xs, [R, C]);
        const gamma = gpu.upload(gs);
        const [y, dx] = [gpu.empty([R, C]), gpu.empty([R, C])];
        const [mean, rstd] = [gpu.empty([R]), gpu.empty([R])];
        const [dgamma, dbeta] = [gpu.empty([C]), gpu.empty([C])];
        for (const t of [y, dx, mean, rstd, dgamma, dbeta]) gpu.poison(t);
        await layerNormForward(gpu, x, gamma, gpu.upload(bs), y, mean, rstd);
        await layerNormBackward(gpu, x, gamma, mean, rstd, gpu.upload(dys, [R, C]), dx, dgamma, dbeta);
        const f = ref.layerNormForward(xs, gs, bs, R, C);
        const g = ref.layerNormBackward(xs, gs, f.mean, f.rstd, dys, R, C);
        return [
          [await gpu.read(y), f.y],
          [await gpu.read(mean), f.mean],
          [await gpu.read(rstd), f.rstd],
          [await gpu.read(dx), g.dx],
          [await gpu.read(dgamma), g.dgamma],
          [await gpu.read(dbeta), g.dbeta],
        ];
      },
    },
  ],
};
