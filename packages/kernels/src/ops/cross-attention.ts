// Fused multi-head cross-attention (flash-style), version 6. Forward: out = softmax(scale * q k^T, key mask) v
// per head, plus the per-row lse the backward recomputes P from; no [Tq, Tk] buffer. Backward (v5's kernels): Drow
// pre-pass, then P and dS with each pair's q.k and dout.v computed once, then dq (over keys) and dk, dv (over
// queries) from them, no atomics. v6 fixes the forward's head size per pipeline, splits the P/dS pass's two
// products into two loops and narrows the gradient kernels' channel blocks. See shaders/cross-attention.*.wgsl for layouts, algorithms and
// measurements; versions 1-5 live in packages/bench/src/baselines.
//
// Shapes: q, out, dout, dq [B, Tq, C]; k, v, dk, dv [B, Tk, C]; mask [B, Tk] (1 keep / 0 pad) or null;
// lse [B, H, Tq]; C = H*D with D % 4 == 0 and D <= 128. Self-attention: pass the same tensor as q, k and v.

import fwdSource from '../../../../shaders/cross-attention.fwd.wgsl';
import dsSource from '../../../../shaders/cross-attention.bwd-ds.wgsl';
import gradSource from '../../../../shaders/cross-attention.bwd-grad.wgsl';
import drowSource from '../../../../shaders/cross-attention.bwd-drow.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectPositiveInt, expectShape } from './check.ts';
import type { InputFn, Op } from '../op.ts';
import { lengthMask } from '../random.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

/** Rows per workgroup of the Drow pre-pass (one invocation each). */
const WG = 64;
/** Largest head size the kernels keep in registers (MAX_D4 = 32 vec4s in the shaders). */
export const CROSS_ATTENTION_MAX_HEAD_SIZE = 128;
/** lse of a fully masked query row, as the forward writes it (f32 -1e30); the backward skips such rows. */
export { CROSS_ATTENTION_MASKED_LSE } from '../ref/cross-attention.ts';

/** Rows per invocation (register blocking): each streamed k/v (or q/dout) vec4 feeds RB query (or key) rows. */
export const CROSS_ATTENTION_RB = 4;

/** Forward: RB query rows per invocation, WG 16 invocations, grid (ceil(Tq / (RB*WG)), B*H). */
export const crossAttentionForwardRbKernel: KernelDef = {
  name: 'cross-attention.fwd.rb',
  source: fwdSource,
  entryPoint: 'main_rb',
  bindings: [
    { name: 'q', access: 'read' },
    { name: 'k', access: 'read' },
    { name: 'v', access: 'read' },
    { name: 'mask', access: 'read' },
    { name: 'out', access: 'read_write' },
    { name: 'lse', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['H', 'u32'],
    ['Tq', 'u32'],
    ['Tk', 'u32'],
    ['D', 'u32'],
    ['has_mask', 'u32'],
    ['scale', 'f32'],
  ],
  overrides: { WG: 16, D4_FIXED: 0, GRID_BH: 1 },
  foldable: false, // the grid is (x, B*H); crossAttentionGrid refuses one past the device limit
};

export const crossAttentionDrowKernel: KernelDef = {
  name: 'cross-attention.bwd.drow',
  source: drowSource,
  entryPoint: 'main',
  bindings: [
    { name: 'out', access: 'read' },
    { name: 'dout', access: 'read' },
    { name: 'drow', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['H', 'u32'],
    ['Tq', 'u32'],
    ['D', 'u32'],
  ],
  overrides: { WG },
  foldable: true,
};

/** lse / Drow per row, P and dS per pair: pass 1 of the backward (each pair's q.k and dout.v once). */
export const crossAttentionBackwardDsKernel: KernelDef = {
  name: 'cross-attention.bwd.ds',
  source: dsSource,
  entryPoint: 'main',
  bindings: [
    { name: 'q', access: 'read' },
    { name: 'k', access: 'read' },
    { name: 'v', access: 'read' },
    { name: 'mask', access: 'read' },
    { name: 'lse', access: 'read' },
    { name: 'dout', access: 'read' },
    { name: 'drow', access: 'read' },
    { name: 'p', access: 'read_write' },
    { name: 'ds', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['H', 'u32'],
    ['Tq', 'u32'],
    ['Tk', 'u32'],
    ['D', 'u32'],
    ['has_mask', 'u32'],
    ['scale', 'f32'],
    ['bh0', 'u32'],
    ['Tk4', 'u32'],
  ],
  overrides: { WG: 16, SPLIT: 1 },
  foldable: false, // grid (query-row blocks, 1, (b, h) of the chunk)
};

/** dq from dS (pass 2); shares its bindings and Params with the dk/dv kernel. */
export const crossAttentionBackwardGradDqKernel: KernelDef = {
  name: 'cross-attention.bwd.grad.dq',
  source: gradSource,
  entryPoint: 'main_dq',
  bindings: [
    { name: 'q', access: 'read' },
    { name: 'k', access: 'read' },
    { name: 'dout', access: 'read' },
    { name: 'p', access: 'read' },
    { name: 'ds', access: 'read' },
    { name: 'dq', access: 'read_write' },
    { name: 'dk', access: 'read_write' },
    { name: 'dv', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['H', 'u32'],
    ['Tq', 'u32'],
    ['Tk', 'u32'],
    ['D', 'u32'],
    ['bh0', 'u32'],
    ['Tk4', 'u32'],
    ['accumulate', 'u32'],
  ],
  // CB: vec4s of channels per invocation: 1 here, 2 for dk/dv (measured, see bwd-grad.wgsl's header; v5 ran 4).
  overrides: { WG: 16, CB: 1 },
  foldable: false, // grid (row tiles, channel blocks, (b, h) of the chunk)
};

/** dk, dv from P and dS (pass 2). */
export const crossAttentionBackwardGradDkDvKernel: KernelDef = {
  ...crossAttentionBackwardGradDqKernel,
  name: 'cross-attention.bwd.grad.dkdv',
  entryPoint: 'main_dkdv',
  overrides: { WG: 16, CB: 2 },
};

export interface CrossAttentionOptions {
  heads: number;
  /** Score scale; defaults to 1/sqrt(D). */
  scale?: number;
  /** Invocations per workgroup (the shaders' WG override); defaults to 16 (64 in the Drow pre-pass). */
  workgroupSize?: number;
  /**
   * Forward only: fix the head size at pipeline creation (default true: v6). false reads it at run time, as v4
   * and v5 did (their bench baselines use it).
   */
  fixedHeadSize?: boolean;
}

export interface CrossAttentionBackwardOptions extends CrossAttentionOptions {
  /** Add into dq, dk, dv instead of overwriting them. */
  accumulate?: boolean;
  /**
   * Scratch for Drow = rowsum(dout * out), at least B*H*Tq elements. When absent, a per-device scratch is
   * allocated on first use and cached (grown when a larger one is needed).
   */
  drow?: Tensor;
  /**
   * Most elements each of the P and dS scratches may hold (default CROSS_ATTENTION_SCRATCH_MAX_ELEMENTS): the
   * backward runs over chunks of (b, h) pairs that fit it.
   */
  maxScratchElements?: number;
}

export interface CrossAttentionDims {
  B: number;
  Tq: number;
  Tk: number;
  C: number;
  H: number;
  D: number;
  scale: number;
}

/** Validates q, k, v, mask and the options (the bench's earlier versions share it); returns the dims. */
export function checkCrossAttentionDims(
  kernel: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  opts: CrossAttentionOptions,
): CrossAttentionDims {
  const fail = (msg: string): never => {
    throw new KernelError(kernel, '', msg, 'shape');
  };
  expectPositiveInt(kernel, 'heads', opts.heads);
  if (q.shape.length !== 3) fail(`q must be [B, Tq, C], got [${q.shape.join(', ')}]`);
  const [B, Tq, C] = q.shape as [number, number, number];
  if (k.shape.length !== 3) fail(`k must be [B, Tk, C], got [${k.shape.join(', ')}]`);
  const Tk = k.shape[1]!;
  expectShape(kernel, 'k', k, [B, Tk, C]);
  expectShape(kernel, 'v', v, [B, Tk, C]);
  const H = opts.heads;
  if (C % H !== 0) fail(`C = ${C} is not divisible by heads H = ${H}`);
  const D = C / H;
  if (D % 4 !== 0 || D > CROSS_ATTENTION_MAX_HEAD_SIZE) {
    fail(
      `head size D = C/H = ${C}/${H} = ${D} must be a multiple of 4 and at most ${CROSS_ATTENTION_MAX_HEAD_SIZE} (the kernels ` +
        `read vec4s and keep a head's D-vector in registers)`,
    );
  }
  if (B === 0 || Tq === 0 || Tk === 0 || C === 0) fail(`B, Tq, Tk and C must be positive, got B=${B} Tq=${Tq} Tk=${Tk} C=${C}`);
  if (mask) expectShape(kernel, 'mask', mask, [B, Tk]);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) fail(`scale must be finite, got ${scale}`);
  if (opts.workgroupSize !== undefined) expectPositiveInt(kernel, 'workgroupSize', opts.workgroupSize);
  return { B, Tq, Tk, C, H, D, scale };
}

/** Each output against each input and the other outputs (inputs may alias each other: k = v = q is self-attention). */
export function expectOutputsDistinct(kernel: string, inputs: Record<string, Tensor>, outputs: Record<string, Tensor>): void {
  const outs = Object.entries(outputs);
  outs.forEach(([o, ot], n) => {
    for (const [i, it] of Object.entries(inputs)) expectDistinct(kernel, { [i]: it, [o]: ot });
    for (const [o2, ot2] of outs.slice(n + 1)) expectDistinct(kernel, { [o]: ot, [o2]: ot2 });
  });
}

/** Workgroups (ceil(rows / wg), B*H) for `rows` rows per (b, h); refuses a grid past the device limit. */
export function crossAttentionGrid(kernel: string, d: CrossAttentionDims, rows: number, wg: number, gpu: Gpu): [number, number] {
  const grid: [number, number] = [Math.ceil(rows / wg), d.B * d.H];
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (grid[0]! > max || grid[1]! > max) {
    throw new KernelError(
      kernel,
      describeCrossAttentionDims(d, null),
      `grid [${grid.join(', ')}] exceeds maxComputeWorkgroupsPerDimension ${max}; split the batch`,
      'shape',
    );
  }
  return grid;
}

export function describeCrossAttentionDims(d: CrossAttentionDims, mask: Tensor | null): string {
  return `B=${d.B} Tq=${d.Tq} Tk=${d.Tk} H=${d.H} D=${d.D} scale=${d.scale}${mask ? ' masked' : ''}`;
}

/**
 * out = per-head softmax(scale * q k^T over kept keys) v, and lse [B, H, Tq]. A fully masked row writes
 * out = 0 and lse = CROSS_ATTENTION_MASKED_LSE. `mask` null keeps every key.
 */
export async function crossAttentionForward(
  gpu: Gpu,
  q: Tensor, // [B, Tq, C]
  k: Tensor, // [B, Tk, C]
  v: Tensor, // [B, Tk, C]
  mask: Tensor | null, // [B, Tk]
  out: Tensor, // [B, Tq, C]
  lse: Tensor, // [B, H, Tq]
  opts: CrossAttentionOptions,
): Promise<void> {
  const kn = 'cross-attention.fwd';
  const d = checkCrossAttentionDims(kn, q, k, v, mask, opts);
  expectShape(kn, 'out', out, [d.B, d.Tq, d.C]);
  expectShape(kn, 'lse', lse, [d.B, d.H, d.Tq]);
  expectOutputsDistinct(kn, mask ? { q, k, v, mask } : { q, k, v }, { out, lse });
  const wg = opts.workgroupSize ?? crossAttentionForwardRbKernel.overrides!.WG!;
  await gpu.dispatch(crossAttentionForwardRbKernel, {
    // Without a mask the shader never reads binding 3: k stands in for it (read-only, so legal to bind twice).
    tensors: [q, k, v, mask ?? k, out, lse],
    params: { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, has_mask: mask ? 1 : 0, scale: d.scale },
    grid: crossAttentionGrid(kn, d, Math.ceil(d.Tq / CROSS_ATTENTION_RB), wg, gpu),
    // The head size fixed at pipeline creation: constant-trip loops over D/4, so the compiler unrolls them and
    // keeps qs and acc at constant indices (see main_rb's header; one pipeline per head size in use).
    overrides: { WG: wg, D4_FIXED: opts.fixedHeadSize === false ? 0 : d.D / 4 },
    shapes: describeCrossAttentionDims(d, mask),
  });
}

/** Per-device scratch tensors of the backward, cached and grown (never shrunk) on demand. */
const scratch = new WeakMap<Gpu, Map<string, Tensor>>();

function scratchFor(gpu: Gpu, name: string, n: number): Tensor {
  let m = scratch.get(gpu);
  if (!m) {
    m = new Map();
    scratch.set(gpu, m);
  }
  let t = m.get(name);
  if (!t || t.size < n) {
    // The old scratch is not destroyed: queued dispatches may still reference it. GC reclaims it.
    t = gpu.empty([Math.max(n, 1024)], `cross-attention ${name} scratch`);
    m.set(name, t);
  }
  return t;
}

/** What crossAttentionBackwardPrepass leaves for the gradient dispatches. */
export interface CrossAttentionBackwardPass {
  d: CrossAttentionDims;
  /** Drow = rowsum(dout * out) [B, H, Tq] (or a larger scratch). */
  drow: Tensor;
  shapes: string;
}

/**
 * The backward's checks and its first dispatch, Drow = rowsum(dout * out) into `opts.drow` or a cached
 * per-device scratch. The bench's earlier versions run their own gradient kernels after it.
 */
export async function crossAttentionBackwardPrepass(
  gpu: Gpu,
  kn: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  opts: CrossAttentionBackwardOptions,
  drowWorkgroupSize = WG,
): Promise<CrossAttentionBackwardPass> {
  const d = checkCrossAttentionDims(kn, q, k, v, mask, opts);
  expectShape(kn, 'out', out, [d.B, d.Tq, d.C]);
  expectShape(kn, 'lse', lse, [d.B, d.H, d.Tq]);
  expectShape(kn, 'dout', dout, [d.B, d.Tq, d.C]);
  expectShape(kn, 'dq', dq, [d.B, d.Tq, d.C]);
  expectShape(kn, 'dk', dk, [d.B, d.Tk, d.C]);
  expectShape(kn, 'dv', dv, [d.B, d.Tk, d.C]);
  const rows = d.B * d.H * d.Tq;
  if (opts.drow && opts.drow.size < rows) {
    throw new KernelError(kn, '', `drow scratch must have at least B*H*Tq = ${rows} elements, got ${opts.drow.size}`, 'shape');
  }
  const drow = opts.drow ?? scratchFor(gpu, 'drow', rows);
  expectOutputsDistinct(kn, { q, k, v, lse, dout, drow, ...(mask ? { mask } : {}) }, { dq, dk, dv });
  expectOutputsDistinct(kn, { out, dout }, { drow });
  const shapes = describeCrossAttentionDims(d, mask);
  await gpu.dispatch(crossAttentionDrowKernel, {
    tensors: [out, dout, drow],
    params: { B: d.B, H: d.H, Tq: d.Tq, D: d.D },
    grid: [Math.ceil(rows / drowWorkgroupSize)],
    overrides: { WG: drowWorkgroupSize },
    shapes,
  });
  return { d, drow, shapes };
}

/** Most f32 elements each of the backward's P and dS scratches holds (64 MiB): larger cases run in (b, h) chunks. */
export const CROSS_ATTENTION_SCRATCH_MAX_ELEMENTS = 16 * 1024 * 1024;

/** (b, h) pairs per chunk of the backward, so that P and dS [chunk, Tq, Tk4] fit the scratch bound and the device. */
export function crossAttentionBackwardChunk(
  kernel: string,
  d: CrossAttentionDims,
  gpu: Gpu,
  maxScratchElements = CROSS_ATTENTION_SCRATCH_MAX_ELEMENTS,
): number {
  expectPositiveInt(kernel, 'maxScratchElements', maxScratchElements);
  const perBh = d.Tq * Math.ceil(d.Tk / 4) * 4;
  const maxElems = Math.min(maxScratchElements, Math.floor(gpu.limits.maxStorageBufferBindingSize / 4));
  const chunk = Math.min(d.B * d.H, Math.floor(maxElems / perBh), gpu.limits.maxComputeWorkgroupsPerDimension);
  if (chunk < 1) {
    throw new KernelError(
      kernel,
      describeCrossAttentionDims(d, null),
      `one head's P and dS (Tq x Tk = ${d.Tq} x ${d.Tk}) exceed the backward's scratch of ${maxElems} elements; shorten the sequences`,
      'shape',
    );
  }
  return chunk;
}

/**
 * dq [B, Tq, C], dk, dv [B, Tk, C] from dout [B, Tq, C] and the forward's out and lse (version 5). Drow
 * pre-pass, then per chunk of (b, h): pass 1 recomputes P and computes dS with each pair's q.k and dout.v
 * once (into per-device scratch), pass 2 reduces them into dq (over keys) and dk, dv (over queries). 5
 * D-long products per (query, key) pair; see shaders/cross-attention.bwd-ds.wgsl for why dS is the partial.
 */
export async function crossAttentionBackward(
  gpu: Gpu,
  q: Tensor, // [B, Tq, C]
  k: Tensor, // [B, Tk, C]
  v: Tensor, // [B, Tk, C]
  mask: Tensor | null, // [B, Tk]
  out: Tensor, // [B, Tq, C]
  lse: Tensor, // [B, H, Tq]
  dout: Tensor, // [B, Tq, C]
  dq: Tensor, // [B, Tq, C]
  dk: Tensor, // [B, Tk, C]
  dv: Tensor, // [B, Tk, C]
  opts: CrossAttentionBackwardOptions,
): Promise<void> {
  const kn = 'cross-attention.bwd';
  const { d, drow, shapes } = await crossAttentionBackwardPrepass(
    gpu,
    kn,
    q,
    k,
    v,
    mask,
    out,
    lse,
    dout,
    dq,
    dk,
    dv,
    opts,
    opts.workgroupSize ?? WG,
  );
  const chunk = crossAttentionBackwardChunk(kn, d, gpu, opts.maxScratchElements);
  const Tk4 = Math.ceil(d.Tk / 4) * 4;
  const p = scratchFor(gpu, 'p', chunk * d.Tq * Tk4);
  const ds = scratchFor(gpu, 'ds', chunk * d.Tq * Tk4);
  const wg = opts.workgroupSize ?? crossAttentionBackwardDsKernel.overrides!.WG!;
  const cbDq = crossAttentionBackwardGradDqKernel.overrides!.CB!;
  const cbDkDv = crossAttentionBackwardGradDkDvKernel.overrides!.CB!;
  const overrides = {
    ds: { WG: wg },
    dq: { WG: wg, CB: cbDq },
    dkdv: { WG: wg, CB: cbDkDv },
  };
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const grids = {
    ds: [Math.ceil(d.Tq / CROSS_ATTENTION_RB / wg), 1],
    dq: [Math.ceil(d.Tq / 4 / wg), Math.ceil(d.D / 4 / cbDq)],
    dkdv: [Math.ceil(d.Tk / 4 / wg), Math.ceil(d.D / 4 / cbDkDv)],
  };
  for (const [name, g] of Object.entries(grids)) {
    if (g.some((x) => x > max))
      throw new KernelError(
        `${kn}.${name}`,
        shapes,
        `grid [${g.join(', ')}] exceeds maxComputeWorkgroupsPerDimension ${max}; shorten the sequences`,
        'shape',
      );
  }
  for (let bh0 = 0; bh0 < d.B * d.H; bh0 += chunk) {
    const n = Math.min(chunk, d.B * d.H - bh0);
    await gpu.dispatch(crossAttentionBackwardDsKernel, {
      tensors: [q, k, v, mask ?? k, lse, dout, drow, p, ds],
      params: { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, has_mask: mask ? 1 : 0, scale: d.scale, bh0, Tk4 },
      grid: [grids.ds[0]!, grids.ds[1]!, n],
      overrides: overrides.ds,
      shapes,
    });
    const tensors = [q, k, dout, p, ds, dq, dk, dv];
    const params = { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, bh0, Tk4, accumulate: opts.accumulate ? 1 : 0 };
    await gpu.dispatch(crossAttentionBackwardGradDqKernel, {
      tensors,
      params,
      grid: [grids.dq[0]!, grids.dq[1]!, n],
      overrides: overrides.dq,
      shapes,
    });
    await gpu.dispatch(crossAttentionBackwardGradDkDvKernel, {
      tensors,
      params,
      grid: [grids.dkdv[0]!, grids.dkdv[1]!, n],
      overrides: overrides.dkdv,
      shapes,
    });
  }
}

// The model's attention shape, small: B=2, H=4, Tq=33 text tokens, Tk=47 audio tokens, D=16 (C=64);
// the second batch entry has its last keys padded.
export const ATTENTION_CHECK_SHAPE = { B: 2, H: 4, Tq: 33, Tk: 47, D: 16 };
const ATT_CHECK_C = ATTENTION_CHECK_SHAPE.H * ATTENTION_CHECK_SHAPE.D;

/**
 * For `emofuse gpu --check` (and the bench baselines' checks): seeded q, k, v, mask, dout on the GPU at the ATTENTION_CHECK_SHAPE shape,
 * and their float64 reference results.
 */
export function attentionCheckCase(gpu: Gpu, input: InputFn) {
  const { B, H, Tq, Tk, D } = ATTENTION_CHECK_SHAPE;
  const qs = input(B * Tq * ATT_CHECK_C, 20);
  const ks = input(B * Tk * ATT_CHECK_C, 21);
  const vs = input(B * Tk * ATT_CHECK_C, 22);
  const douts = input(B * Tq * ATT_CHECK_C, 23);
  const masks = lengthMask([Tk, Tk - 9], Tk);
  return {
    q: gpu.upload(qs, [B, Tq, ATT_CHECK_C]),
    k: gpu.upload(ks, [B, Tk, ATT_CHECK_C]),
    v: gpu.upload(vs, [B, Tk, ATT_CHECK_C]),
    mask: gpu.upload(masks, [B, Tk]),
    dout: gpu.upload(douts, [B, Tq, ATT_CHECK_C]),
    expected() {
      const f = ref.crossAttentionForward(qs, ks, vs, masks, { B, Tq, Tk, H, D });
      const g = ref.crossAttentionBackward(qs, ks, vs, masks, f.out, f.lse, douts, { B, Tq, Tk, H, D });
      return { f, g };
    },
  };
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s case. */
export const crossAttentionOp: Op = {
  name: 'cross-attention',
  kernels: [
    crossAttentionForwardRbKernel,
    crossAttentionDrowKernel,
    crossAttentionBackwardDsKernel,
    crossAttentionBackwardGradDqKernel,
    crossAttentionBackwardGradDkDvKernel,
  ],
  wrappers: { crossAttentionForward, crossAttentionBackward },
  checks: [
    {
      name:
        `cross-attention fused fwd+bwd B=${ATTENTION_CHECK_SHAPE.B} H=${ATTENTION_CHECK_SHAPE.H} ` +
        `Tq=${ATTENTION_CHECK_SHAPE.Tq} Tk=${ATTENTION_CHECK_SHAPE.Tk} D=${ATTENTION_CHECK_SHAPE.D}`,
      tol: TOL.attentionBackward,
      async run(gpu, input) {
        const { B, H, Tq, Tk } = ATTENTION_CHECK_SHAPE;
        const { q, k, v, mask, dout, expected } = attentionCheckCase(gpu, input);
        const out = gpu.empty([B, Tq, ATT_CHECK_C]);
        const lse = gpu.empty([B, H, Tq]);
        const dq = gpu.empty([B, Tq, ATT_CHECK_C]);
        const dk = gpu.empty([B, Tk, ATT_CHECK_C]);
        const dv = gpu.empty([B, Tk, ATT_CHECK_C]);
        for (const t of [out, lse, dq, dk, dv]) gpu.poison(t);
        await crossAttentionForward(gpu, q, k, v, mask, out, lse, { heads: H });
        await crossAttentionBackward(gpu, q, k, v, mask, out, lse, dout, dq, dk, dv, { heads: H });
        const { f, g } = expected();
        return [
          [await gpu.read(out), f.out],
          [await gpu.read(lse), f.lse],
          [await gpu.read(dq), g.dq],
          [await gpu.read(dk), g.dk],
          [await gpu.read(dv), g.dv],
        ];
      },
    },
  ],
};
