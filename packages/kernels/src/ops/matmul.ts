// Batched matmul. Forward C = op(A) @ op(B) (+ bias) (-> GELU), with op = identity or transpose and an
// optional broadcast B (one weight for every batch). Backward dA / dB are the same kernel with other
// transpose flags; dbias is its own column-sum kernel. See shaders/matmul.*.wgsl.
//
// GELU epilogue and its backward: the forward can write the pre-activation to `pre` (one extra store per
// element) so the backward runs `geluBackward(pre, dOut, dC)` and then `matmulBackward(dC, ...)`. We keep
// the pre-activation rather than recomputing it, as llm.c keeps `fch` beside `fch_gelu`: recomputing costs
// a whole matmul (2MNK FLOPs) to save M*N floats of memory.

import fwdSource from '../../../../shaders/matmul.fwd.wgsl';
import bwdSource from '../../../../shaders/matmul.bwd.wgsl';
import { ERF_WGSL } from './gelu.ts';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { describeShapes, expectDistinct, expectPositiveInt, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import * as ref from '../ref/index.ts';
import type { GeluForm } from '../ref/gelu.ts';
import { TOL } from '../tolerances.ts';

const WG_X = 8;
const WG_Y = 8;
const TM = 4; // rows per invocation; the column block is one vec4 (4 columns)
const KC = 64; // k terms per partial sum
const MAX_TM = 8; // MAX_TM in matmul.fwd.wgsl
const DBIAS_WG = 64;

export const matmulForwardKernel: KernelDef = {
  name: 'matmul.fwd',
  source: `${fwdSource}\n${ERF_WGSL}`,
  entryPoint: 'main',
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'bias', access: 'read' },
    { name: 'c', access: 'read_write' },
    { name: 'pre', access: 'read_write' },
  ],
  params: [
    ['M', 'u32'],
    ['N', 'u32'],
    ['K', 'u32'],
    ['reduce', 'u32'],
    ['a_batch_stride', 'u32'],
    ['b_batch_stride', 'u32'],
    ['trans_a', 'u32'],
    ['trans_b', 'u32'],
    ['has_bias', 'u32'],
    ['gelu', 'u32'],
    ['write_pre', 'u32'],
    ['accumulate', 'u32'],
  ],
  overrides: { WG_X, WG_Y, TM, KC },
};

export const matmulBackwardBiasKernel: KernelDef = {
  name: 'matmul.bwd.dbias',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 'dc', access: 'read' },
    { name: 'dbias', access: 'read_write' },
  ],
  params: [
    ['rows', 'u32'],
    ['N', 'u32'],
    ['accumulate', 'u32'],
  ],
  overrides: { WG: DBIAS_WG },
  foldable: true,
};

/** Sizes of one matmul: op(A) is [M, K], op(B) is [K, N], C is [batch, M, N]. */
export interface MatmulDims {
  batch: number;
  M: number;
  N: number;
  K: number;
}

/** How A and B are stored. */
export interface MatmulLayout {
  /** A stored [batch, K, M] (op(A) = A^T) instead of [batch, M, K]. */
  transA?: boolean;
  /** B stored [batchB, N, K] (op(B) = B^T) instead of [batchB, K, N]. */
  transB?: boolean;
  /** batchB = 1: one B shared by every batch (a linear layer's weight). */
  broadcastB?: boolean;
}

export interface MatmulForwardOptions extends MatmulLayout {
  /** [N], added to every row of C. */
  bias?: Tensor;
  /** Apply GELU after the bias: true or 'tanh' the tanh form, 'erf' the exact form (BERT's). */
  gelu?: boolean | GeluForm;
  /** [batch, M, N]: receives C before GELU (after bias), for the GELU backward. Only with `gelu`. */
  pre?: Tensor;
  /** Add into C instead of overwriting it. */
  accumulate?: boolean;
  /** Tile overrides (WG_X, WG_Y, TM, KC), for tuning; defaults are matmulForwardKernel.overrides. */
  overrides?: Readonly<Record<string, number>>;
}

const dummies = new WeakMap<Gpu, { read: Tensor; write: Tensor }>();

/** One-element stand-ins bound where an optional input (bias) or output (pre) is not used. */
function dummyTensors(gpu: Gpu): { read: Tensor; write: Tensor } {
  let d = dummies.get(gpu);
  if (!d) {
    d = { read: gpu.zeros([1], 'matmul unused input'), write: gpu.zeros([1], 'matmul unused output') };
    dummies.set(gpu, d);
  }
  return d;
}

interface RawMatmul {
  M: number;
  N: number;
  K: number;
  /** Output batches (grid z). */
  batch: number;
  /** Consecutive input slices summed into one output batch. */
  reduce: number;
  aBatchStride: number;
  bBatchStride: number;
  transA: boolean;
  transB: boolean;
  bias?: Tensor;
  gelu?: boolean | GeluForm;
  pre?: Tensor;
  accumulate?: boolean;
  overrides?: Readonly<Record<string, number>>;
}

/** Checks the grid and dispatches matmul.fwd; the callers have already checked the tensor sizes. */
async function dispatchMatmul(gpu: Gpu, name: string, a: Tensor, b: Tensor, c: Tensor, o: RawMatmul, shapes: string): Promise<void> {
  const ov = { ...matmulForwardKernel.overrides!, ...(o.overrides ?? {}) };
  const tm = ov.TM!;
  if (!Number.isInteger(tm) || tm < 1 || tm > MAX_TM)
    throw new KernelError(name, shapes, `override TM must be an integer in 1..${MAX_TM}, got ${tm}`, 'shape');
  if (!Number.isInteger(ov.KC) || ov.KC! < 1)
    throw new KernelError(name, shapes, `override KC must be a positive integer, got ${ov.KC}`, 'shape');
  const grid: [number, number, number] = [Math.ceil(o.N / (4 * ov.WG_X!)), Math.ceil(o.M / (tm * ov.WG_Y!)), o.batch];
  const maxDim = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (grid.some((g) => g > maxDim)) {
    throw new KernelError(
      name,
      shapes,
      `grid [${grid.join(', ')}] (N / ${4 * ov.WG_X!}, M / ${tm * ov.WG_Y!}, batch) exceeds maxComputeWorkgroupsPerDimension ${maxDim}; ` +
        `split the batch or raise WG_X / WG_Y / TM`,
      'shape',
    );
  }
  const d = dummyTensors(gpu);
  await gpu.dispatch(matmulForwardKernel, {
    tensors: [a, b, o.bias ?? d.read, c, o.pre ?? d.write],
    params: {
      M: o.M,
      N: o.N,
      K: o.K,
      reduce: o.reduce,
      a_batch_stride: o.aBatchStride,
      b_batch_stride: o.bBatchStride,
      trans_a: o.transA ? 1 : 0,
      trans_b: o.transB ? 1 : 0,
      has_bias: o.bias ? 1 : 0,
      gelu: o.gelu === 'erf' ? 2 : o.gelu ? 1 : 0,
      write_pre: o.pre ? 1 : 0,
      accumulate: o.accumulate ? 1 : 0,
    },
    grid,
    overrides: o.overrides,
    shapes,
  });
}

function checkDims(k: string, dims: MatmulDims): void {
  expectPositiveInt(k, 'batch', dims.batch);
  expectPositiveInt(k, 'M', dims.M);
  expectPositiveInt(k, 'N', dims.N);
  expectPositiveInt(k, 'K', dims.K);
}

/**
 * c[batch, M, N] = op(a) @ op(b) (+ bias[N]) (-> gelu), or c += ... with `accumulate`.
 * a: [batch, M, K] ([batch, K, M] with transA); b: [batchB, K, N] ([batchB, N, K] with transB),
 * batchB = 1 with broadcastB, else batch. Only sizes are checked, so [B*T, C] and [B, T, C] both serve.
 */
export async function matmulForward(
  gpu: Gpu,
  a: Tensor,
  b: Tensor,
  c: Tensor,
  dims: MatmulDims,
  opts: MatmulForwardOptions = {},
): Promise<void> {
  const k = matmulForwardKernel.name;
  checkDims(k, dims);
  const { batch, M, N, K } = dims;
  const batchB = opts.broadcastB ? 1 : batch;
  expectSize(k, 'a', a, batch * M * K);
  expectSize(k, 'b', b, batchB * K * N);
  expectSize(k, 'c', c, batch * M * N);
  if (opts.bias) expectSize(k, 'bias', opts.bias, N);
  if (opts.pre) {
    if (!opts.gelu) throw new KernelError(k, '', 'pre (the pre-activation output) is only written with gelu', 'shape');
    expectSize(k, 'pre', opts.pre, batch * M * N);
  }
  const outs: Record<string, Tensor> = { c };
  if (opts.pre) outs.pre = opts.pre;
  for (const [on, o] of Object.entries(outs)) {
    expectDistinct(k, { a, [on]: o });
    expectDistinct(k, { b, [on]: o });
    if (opts.bias) expectDistinct(k, { bias: opts.bias, [on]: o });
  }
  if (opts.pre) expectDistinct(k, { c, pre: opts.pre });
  const shapes =
    describeShapes({ batch, M, N, K, a, b, c }) +
    ` transA=${!!opts.transA} transB=${!!opts.transB} broadcastB=${!!opts.broadcastB} bias=${!!opts.bias} gelu=${opts.gelu ?? false}`;
  await dispatchMatmul(
    gpu,
    k,
    a,
    b,
    c,
    {
      M,
      N,
      K,
      batch,
      reduce: 1,
      aBatchStride: M * K,
      bBatchStride: opts.broadcastB ? 0 : K * N,
      transA: !!opts.transA,
      transB: !!opts.transB,
      bias: opts.bias,
      gelu: opts.gelu,
      pre: opts.pre,
      accumulate: opts.accumulate,
      overrides: opts.overrides,
    },
    shapes,
  );
}

export interface MatmulBackwardTensors {
  /** [batch, M, N]: gradient of C before GELU (run geluBackward(pre, dOut, dc) first when gelu was on). */
  dc: Tensor;
  /** The forward's inputs, in their storage layouts. */
  a: Tensor;
  b: Tensor;
  /** Outputs, each optional: dA in A's layout, dB in B's layout ([1, ...] summed over batch when broadcastB), dbias [N]. */
  dA?: Tensor;
  dB?: Tensor;
  dBias?: Tensor;
}

export interface MatmulBackwardOptions extends MatmulLayout {
  /** Add into dB and dBias instead of overwriting them (parameter gradients summed over uses). */
  accumulate?: boolean;
  /** Add into dA instead of overwriting it (an activation used twice). */
  accumulateA?: boolean;
  overrides?: Readonly<Record<string, number>>;
}

/**
 * Gradients of C = op(A) @ op(B) + bias:
 *   d op(A) = dC @ op(B)^T   ->  dA = that ([M, K]) or its transpose ([K, M]) when transA
 *   d op(B) = op(A)^T @ dC   ->  dB = that ([K, N]) or its transpose ([N, K]) when transB; summed over batch if broadcastB
 *   dbias   = column sums of dC over all batch * M rows
 */
export async function matmulBackward(
  gpu: Gpu,
  t: MatmulBackwardTensors,
  dims: MatmulDims,
  opts: MatmulBackwardOptions = {},
): Promise<void> {
  const k = 'matmul.bwd';
  checkDims(k, dims);
  const { batch, M, N, K } = dims;
  const { dc, a, b, dA, dB, dBias } = t;
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const batchB = opts.broadcastB ? 1 : batch;
  expectSize(k, 'dc', dc, batch * M * N);
  expectSize(k, 'a', a, batch * M * K);
  expectSize(k, 'b', b, batchB * K * N);
  const ins = { dc, a, b };
  const outs: Record<string, Tensor> = {};
  if (dA) expectSize(k, 'dA', dA, batch * M * K), (outs.dA = dA);
  if (dB) expectSize(k, 'dB', dB, batchB * K * N), (outs.dB = dB);
  if (dBias) expectSize(k, 'dBias', dBias, N), (outs.dBias = dBias);
  for (const [on, o] of Object.entries(outs)) {
    for (const [iname, i] of Object.entries(ins)) expectDistinct(k, { [iname]: i, [on]: o });
  }
  const shapes = describeShapes({ batch, M, N, K, dc, a, b }) + ` transA=${transA} transB=${transB} broadcastB=${!!opts.broadcastB}`;
  const cStride = M * N;
  const aStride = M * K;
  const bStride = opts.broadcastB ? 0 : K * N;

  if (dA) {
    // transA = 0: dA[M, K] = dC[M, N] @ op(B)^T, and op(B)^T is B read with the opposite flag.
    // transA = 1: dA[K, M] = op(B)[K, N] @ dC^T.
    const raw = !transA
      ? { x: dc, y: b, M, N: K, K: N, xs: cStride, ys: bStride, tx: false, ty: !transB }
      : { x: b, y: dc, M: K, N: M, K: N, xs: bStride, ys: cStride, tx: transB, ty: true };
    await dispatchMatmul(
      gpu,
      `${k}.dA`,
      raw.x,
      raw.y,
      dA,
      {
        M: raw.M,
        N: raw.N,
        K: raw.K,
        batch,
        reduce: 1,
        aBatchStride: raw.xs,
        bBatchStride: raw.ys,
        transA: raw.tx,
        transB: raw.ty,
        accumulate: opts.accumulateA,
        overrides: opts.overrides,
      },
      shapes,
    );
  }
  if (dB) {
    // transB = 0: dB[K, N] = op(A)^T @ dC[M, N], op(A)^T is A read with the opposite flag.
    // transB = 1: dB[N, K] = dC^T @ op(A)[M, K].
    // Broadcast B: one output batch that sums all `batch` slices (reduce = batch).
    const raw = !transB
      ? { x: a, y: dc, M: K, N, K: M, xs: aStride, ys: cStride, tx: !transA, ty: false }
      : { x: dc, y: a, M: N, N: K, K: M, xs: cStride, ys: aStride, tx: true, ty: transA };
    await dispatchMatmul(
      gpu,
      `${k}.dB`,
      raw.x,
      raw.y,
      dB,
      {
        M: raw.M,
        N: raw.N,
        K: raw.K,
        batch: batchB,
        reduce: opts.broadcastB ? batch : 1,
        aBatchStride: raw.xs,
        bBatchStride: raw.ys,
        transA: raw.tx,
        transB: raw.ty,
        accumulate: opts.accumulate,
        overrides: opts.overrides,
      },
      shapes,
    );
  }
  if (dBias) await matmulBackwardBias(gpu, dc, dBias, batch * M, N, opts.accumulate);
}

/** dbias[N] = column sums of dc[rows, N], or dbias += ... with `accumulate`. */
export async function matmulBackwardBias(gpu: Gpu, dc: Tensor, dBias: Tensor, rows: number, N: number, accumulate = false): Promise<void> {
  const k = matmulBackwardBiasKernel.name;
  expectPositiveInt(k, 'rows', rows);
  expectPositiveInt(k, 'N', N);
  expectSize(k, 'dc', dc, rows * N);
  expectSize(k, 'dbias', dBias, N);
  expectDistinct(k, { dc, dbias: dBias });
  await gpu.dispatch(matmulBackwardBiasKernel, {
    tensors: [dc, dBias],
    params: { rows, N, accumulate: accumulate ? 1 : 0 },
    grid: [Math.ceil(N / DBIAS_WG)],
    shapes: describeShapes({ rows, N, dc }),
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const matmulOp: Op = {
  name: 'matmul',
  kernels: [matmulForwardKernel, matmulBackwardBiasKernel],
  wrappers: { matmulForward, matmulBackward, matmulBackwardBias },
  checks: [
    {
      name: 'matmul fwd+bias+gelu, bwd [130,96]@[96,67]',
      tol: TOL.matmulBackward,
      async run(gpu, input) {
        const dims = { batch: 1, M: 130, N: 67, K: 96 };
        const as = input(dims.M * dims.K, 10);
        const bs = input(dims.K * dims.N, 11);
        const biases = input(dims.N, 12);
        const dcs = input(dims.M * dims.N, 13);
        const a = gpu.upload(as);
        const b = gpu.upload(bs);
        const c = gpu.empty([dims.M * dims.N]);
        const pre = gpu.empty([dims.M * dims.N]);
        const dA = gpu.empty([dims.M * dims.K]);
        const dB = gpu.empty([dims.K * dims.N]);
        const dBias = gpu.empty([dims.N]);
        for (const t of [c, pre, dA, dB, dBias]) gpu.poison(t);
        await matmulForward(gpu, a, b, c, dims, { bias: gpu.upload(biases), gelu: true, pre, broadcastB: true });
        await matmulBackward(gpu, { dc: gpu.upload(dcs), a, b, dA, dB, dBias }, dims, { broadcastB: true });
        const f = ref.matmulForward(as, bs, dims, { bias: biases, gelu: true, broadcastB: true });
        const g = ref.matmulBackward(dcs, as, bs, dims, { broadcastB: true });
        return [
          [await gpu.read(c), f.out],
          [await gpu.read(pre), f.pre],
          [await gpu.read(dA), g.dA],
          [await gpu.read(dB), g.dB],
          [await gpu.read(dBias), g.dBias],
        ];
      },
    },
  ],
};
