// Softmax over the last axis with an optional key mask and a scale: y = softmax(scale * x) over kept
// columns, 0 elsewhere; backward dx = scale * y * (dy - sum(dy * y)). See shaders/softmax.*.wgsl.

import fwdSource from '../../../../shaders/softmax.fwd.wgsl';
import bwdSource from '../../../../shaders/softmax.bwd.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectPositiveInt, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import { ATTENTION_CHECK_SHAPE as ATT } from './cross-attention.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';
import { lengthMask } from '../random.ts';

/** Invocations per workgroup: rows per workgroup in `row` mode, threads per row in `workgroup` mode (power of 2). */
const WG = 64;
/**
 * Default entry point: one workgroup per row only for rows longer than SOFTMAX_ROW_MAX_N when there are
 * at most SOFTMAX_WG_MAX_R rows (the row path would then run as a single workgroup, i.e. one CPU thread
 * on llvmpipe); otherwise one invocation per row. Measured on llvmpipe (2 cores), fwd / bwd ms:
 * [64, 4096] row 1.22 / 1.28, workgroup 0.95 / 0.67; [128, 4096] row 1.22 / 1.29, workgroup 1.77 / 1.76;
 * [4096, 512] row 13.2 / 5.5, workgroup 43.2 / 31.8. Real GPUs will want a larger SOFTMAX_WG_MAX_R.
 */
export const SOFTMAX_ROW_MAX_N = 1024;
export const SOFTMAX_WG_MAX_R = WG;

export type SoftmaxVariant = 'row' | 'workgroup';

const fwdBindings = [
  { name: 'x', access: 'read' },
  { name: 'mask', access: 'read' },
  { name: 'y', access: 'read_write' },
] as const;
const fwdParams = [
  ['R', 'u32'],
  ['N', 'u32'],
  ['mask_rows', 'u32'],
  ['rows_per_mask_row', 'u32'],
  ['has_mask', 'u32'],
  ['scale', 'f32'],
] as const;

export const softmaxForwardRowKernel: KernelDef = {
  name: 'softmax.fwd.row',
  source: fwdSource,
  entryPoint: 'main_row',
  bindings: fwdBindings,
  params: fwdParams,
  overrides: { WG },
  foldable: true,
};

export const softmaxForwardWorkgroupKernel: KernelDef = {
  name: 'softmax.fwd.wg',
  source: fwdSource,
  entryPoint: 'main_wg',
  bindings: fwdBindings,
  params: fwdParams,
  overrides: { WG },
  foldable: true,
};

const bwdBindings = [
  { name: 'y', access: 'read' },
  { name: 'dy', access: 'read' },
  { name: 'dx', access: 'read_write' },
] as const;
const bwdParams = [
  ['R', 'u32'],
  ['N', 'u32'],
  ['scale', 'f32'],
] as const;

export const softmaxBackwardRowKernel: KernelDef = {
  name: 'softmax.bwd.row',
  source: bwdSource,
  entryPoint: 'main_row',
  bindings: bwdBindings,
  params: bwdParams,
  overrides: { WG },
  foldable: true,
};

export const softmaxBackwardWorkgroupKernel: KernelDef = {
  name: 'softmax.bwd.wg',
  source: bwdSource,
  entryPoint: 'main_wg',
  bindings: bwdBindings,
  params: bwdParams,
  overrides: { WG },
  foldable: true,
};

export interface SoftmaxOptions {
  /** [mask_rows, N] f32, 1 keep / 0 pad; row r of x uses mask row floor(r / rowsPerMaskRow). */
  mask?: Tensor;
  /** Rows of x per mask row (H*Tq for attention scores [B, H, Tq, Tk] with a [B, Tk] mask). Default 1. */
  rowsPerMaskRow?: number;
  /** Applied to x before the softmax (attention's 1/sqrt(D)). Default 1. */
  scale?: number;
  /** Force an entry point (tests, bench); default: by N and R (see SOFTMAX_ROW_MAX_N). */
  variant?: SoftmaxVariant;
}

function rowsOf(kernel: string, x: Tensor): { R: number; N: number } {
  if (x.shape.length < 1) throw new KernelError(kernel, '', `x must have at least one axis, got [${x.shape.join(', ')}]`, 'shape');
  const N = x.shape[x.shape.length - 1]!;
  return { R: N === 0 ? 0 : x.size / N, N };
}

function pickVariant(R: number, N: number, variant?: SoftmaxVariant): SoftmaxVariant {
  return variant ?? (N > SOFTMAX_ROW_MAX_N && R <= SOFTMAX_WG_MAX_R ? 'workgroup' : 'row');
}

/** y [R, N] = softmax(scale * x) over the last axis of x [..., N], masked columns (and fully masked rows) 0. */
export async function softmaxForward(gpu: Gpu, x: Tensor, y: Tensor, opts: SoftmaxOptions = {}): Promise<void> {
  const { R, N } = rowsOf('softmax.fwd', x);
  const variant = pickVariant(R, N, opts.variant);
  const def = variant === 'row' ? softmaxForwardRowKernel : softmaxForwardWorkgroupKernel;
  const k = def.name;
  const scale = opts.scale ?? 1;
  const rowsPerMaskRow = opts.rowsPerMaskRow ?? 1;
  expectSize(k, 'y', y, x.size);
  expectDistinct(k, { x, y });
  expectPositiveInt(k, 'rowsPerMaskRow', rowsPerMaskRow);
  if (!Number.isFinite(scale)) throw new KernelError(k, '', `scale must be finite, got ${scale}`, 'shape');
  let maskRows = 1;
  if (opts.mask) {
    const mask = opts.mask;
    expectDistinct(k, { mask, y });
    const mN = mask.shape[mask.shape.length - 1];
    if (mN !== N || mask.size % N !== 0) {
      throw new KernelError(k, '', `mask must have last axis N=${N}, got [${mask.shape.join(', ')}]`, 'shape');
    }
    maskRows = mask.size / N;
    if (maskRows * rowsPerMaskRow !== R) {
      throw new KernelError(k, '', `mask rows (${maskRows}) * rowsPerMaskRow (${rowsPerMaskRow}) must equal the rows of x (${R})`, 'shape');
    }
  }
  await gpu.dispatch(def, {
    // Without a mask, x is bound in its place (read-only twice is allowed) and never read as a mask.
    tensors: [x, opts.mask ?? x, y],
    params: { R, N, mask_rows: maskRows, rows_per_mask_row: rowsPerMaskRow, has_mask: opts.mask ? 1 : 0, scale },
    grid: [variant === 'row' ? Math.ceil(R / WG) : R],
    shapes: `x${x} mask${opts.mask ?? '[]'} rowsPerMaskRow=${rowsPerMaskRow} scale=${scale}`,
  });
}

/** dx = scale * y * (dy - sum(dy * y)) per row, from the forward output y; all [..., N], same size. */
export async function softmaxBackward(
  gpu: Gpu,
  y: Tensor,
  dy: Tensor,
  dx: Tensor,
  opts: { scale?: number; variant?: SoftmaxVariant } = {},
): Promise<void> {
  const { R, N } = rowsOf('softmax.bwd', y);
  const variant = pickVariant(R, N, opts.variant);
  const def = variant === 'row' ? softmaxBackwardRowKernel : softmaxBackwardWorkgroupKernel;
  const k = def.name;
  const scale = opts.scale ?? 1;
  expectSize(k, 'dy', dy, y.size);
  expectSize(k, 'dx', dx, y.size);
  expectDistinct(k, { y, dy, dx });
  await gpu.dispatch(def, {
    tensors: [y, dy, dx],
    params: { R, N, scale },
    grid: [variant === 'row' ? Math.ceil(R / WG) : R],
    shapes: `y${y} scale=${scale}`,
  });
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const softmaxOp: Op = {
  name: 'softmax',
  kernels: [softmaxForwardRowKernel, softmaxForwardWorkgroupKernel, softmaxBackwardRowKernel, softmaxBackwardWorkgroupKernel],
  wrappers: { softmaxForward, softmaxBackward },
  checks: [
    {
      name: 'softmax masked, scaled fwd+bwd [2*4*33, 47]',
      tol: TOL.softmaxBackward,
      async run(gpu, input) {
        const { B, H, Tq, Tk } = ATT;
        const R = B * H * Tq;
        const xs = input(R * Tk, 30).map((v) => v * 20); // logits up to +-40 after scale 1
        const dys = input(R * Tk, 31);
        const masks = lengthMask([Tk, 0], Tk); // second batch entry fully masked: zeros
        const x = gpu.upload(xs, [R, Tk]);
        const y = gpu.empty([R, Tk]);
        const dx = gpu.empty([R, Tk]);
        gpu.poison(y);
        gpu.poison(dx);
        const opts = { mask: gpu.upload(masks, [B, Tk]), rowsPerMaskRow: H * Tq, scale: 0.5 };
        await softmaxForward(gpu, x, y, opts);
        await softmaxBackward(gpu, y, gpu.upload(dys, [R, Tk]), dx, opts);
        const yr = ref.softmaxForward(xs, R, Tk, { mask: masks, rowsPerMaskRow: H * Tq, scale: 0.5 });
        return [
          [await gpu.read(y), yr],
          [await gpu.read(dx), ref.softmaxBackward(yr, dys, R, Tk, 0.5)],
        ];
      },
    },
  ],
};
