// Fused multi-head cross-attention (flash-style). Forward: out = softmax(scale * q k^T, key mask) v per head,
// plus the per-row lse the backward recomputes P from. Backward: Drow pre-pass, then dq (loop over keys)
// and dk, dv (loop over queries), no atomics. See shaders/cross-attention.*.wgsl for layouts and algorithms.
//
// Shapes: q, out, dout, dq [B, Tq, C]; k, v, dk, dv [B, Tk, C]; mask [B, Tk] (1 keep / 0 pad) or null;
// lse [B, H, Tq]; C = H*D with D % 4 == 0 and D <= 128. Self-attention: pass the same tensor as q, k and v.

import fwdSource from '../../../../shaders/cross-attention.fwd.wgsl';
import bwdSource from '../../../../shaders/cross-attention.bwd.wgsl';
import drowSource from '../../../../shaders/cross-attention.bwd-drow.wgsl';
import { KernelError, type Gpu, type Tensor } from '../runtime/gpu.ts';
import { foldGrid, type KernelDef } from '../runtime/kernel.ts';
import { expectDistinct, expectPositiveInt, expectShape } from './check.ts';

/** Query rows (forward, dq, Drow) or key rows (dk, dv) per workgroup; one invocation each. */
const WG = 64;
/** Largest head size the kernels keep in registers (MAX_D4 = 32 vec4s in the shaders). */
export const CROSS_ATTENTION_MAX_HEAD_SIZE = 128;
/** lse of a fully masked query row, as the forward writes it (f32 -1e30); the backward skips such rows. */
export { CROSS_ATTENTION_MASKED_LSE } from '../ref/cross-attention.ts';

export const crossAttentionForwardKernel: KernelDef = {
  name: 'cross-attention.fwd',
  source: fwdSource,
  entryPoint: 'main',
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
  overrides: { WG, D4_FIXED: 0, GRID_BH: 0 },
  foldable: false, // the wrapper folds the flat grid itself (versions 1, 2) or uses (x, B*H) (version 3)
};

/** Version 4 forward: RB = 4 query rows per invocation (register blocking), grid (ceil(Tq / (4*WG)), B*H). */
export const CROSS_ATTENTION_RB = 4;
export const crossAttentionForwardRbKernel: KernelDef = {
  ...crossAttentionForwardKernel,
  name: 'cross-attention.fwd.rb',
  entryPoint: 'main_rb',
  overrides: { WG: 16, D4_FIXED: 0, GRID_BH: 1 },
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

const backwardBindings = [
  { name: 'q', access: 'read' },
  { name: 'k', access: 'read' },
  { name: 'v', access: 'read' },
  { name: 'mask', access: 'read' },
  { name: 'lse', access: 'read' },
  { name: 'dout', access: 'read' },
  { name: 'drow', access: 'read' },
  { name: 'dq', access: 'read_write' },
  { name: 'dk', access: 'read_write' },
  { name: 'dv', access: 'read_write' },
] as const;

const backwardParams = [
  ['B', 'u32'],
  ['H', 'u32'],
  ['Tq', 'u32'],
  ['Tk', 'u32'],
  ['D', 'u32'],
  ['has_mask', 'u32'],
  ['scale', 'f32'],
  ['accumulate', 'u32'],
] as const;

export const crossAttentionBackwardDqKernel: KernelDef = {
  name: 'cross-attention.bwd.dq',
  source: bwdSource,
  entryPoint: 'main_dq',
  bindings: backwardBindings,
  params: backwardParams,
  overrides: { WG, D4_FIXED: 0, GRID_BH: 0 },
  foldable: false, // see crossAttentionForwardKernel
};

export const crossAttentionBackwardDkDvKernel: KernelDef = {
  name: 'cross-attention.bwd.dkdv',
  source: bwdSource,
  entryPoint: 'main_dkdv',
  bindings: backwardBindings,
  params: backwardParams,
  overrides: { WG, D4_FIXED: 0, GRID_BH: 0 },
  foldable: false, // see crossAttentionForwardKernel
};

/** Version 4 backward: RB = 4 query rows (dq) or key rows (dk, dv) per invocation, grid (ceil(rows / (4*WG)), B*H). */
export const crossAttentionBackwardDqRbKernel: KernelDef = {
  ...crossAttentionBackwardDqKernel,
  name: 'cross-attention.bwd.dq.rb',
  entryPoint: 'main_dq_rb',
  overrides: { WG: 16, D4_FIXED: 0, GRID_BH: 1 },
};

export const crossAttentionBackwardDkDvRbKernel: KernelDef = {
  ...crossAttentionBackwardDkDvKernel,
  name: 'cross-attention.bwd.dkdv.rb',
  entryPoint: 'main_dkdv_rb',
  overrides: { WG: 16, D4_FIXED: 0, GRID_BH: 1 },
};

export interface CrossAttentionOptions {
  heads: number;
  /** Score scale; defaults to 1/sqrt(D). */
  scale?: number;
  /** Rows per workgroup (the shaders' WG override); defaults to 64. */
  workgroupSize?: number;
  /**
   * Kernel version (bench keeps the earlier ones comparable): 1 reads D at run time over a flat 1-D grid;
   * 2 fixes the head size at pipeline creation (override D4_FIXED = D/4: loops unrolled; measured 1.2-1.7x
   * SLOWER on llvmpipe, kept as a record); 3 (default) is 1 with one (b, h) per workgroup (override GRID_BH,
   * grid (ceil(rows / WG), B*H)), so the rows every invocation streams are the same across the workgroup;
   * 4 (default): 4 rows per invocation (register blocking, WG 16) in the forward, dq and dk/dv kernels.
   */
  version?: 1 | 2 | 3 | 4;
}

export interface CrossAttentionBackwardOptions extends CrossAttentionOptions {
  /** Add into dq, dk, dv instead of overwriting them. */
  accumulate?: boolean;
  /**
   * Scratch for Drow = rowsum(dout * out), at least B*H*Tq elements. When absent, a per-device scratch is
   * allocated on first use and cached (grown when a larger one is needed).
   */
  drow?: Tensor;
}

interface Dims {
  B: number;
  Tq: number;
  Tk: number;
  C: number;
  H: number;
  D: number;
  scale: number;
}

function checkDims(kernel: string, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, opts: CrossAttentionOptions): Dims {
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
    fail(`head size D = C/H = ${C}/${H} = ${D} must be a multiple of 4 and at most ${CROSS_ATTENTION_MAX_HEAD_SIZE} (the kernels read vec4s and keep a head's D-vector in registers)`);
  }
  if (B === 0 || Tq === 0 || Tk === 0 || C === 0) fail(`B, Tq, Tk and C must be positive, got B=${B} Tq=${Tq} Tk=${Tk} C=${C}`);
  if (mask) expectShape(kernel, 'mask', mask, [B, Tk]);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) fail(`scale must be finite, got ${scale}`);
  if (opts.workgroupSize !== undefined) expectPositiveInt(kernel, 'workgroupSize', opts.workgroupSize);
  return { B, Tq, Tk, C, H, D, scale };
}

/** Each output against each input and the other outputs (inputs may alias each other: k = v = q is self-attention). */
function expectOutputsDistinct(kernel: string, inputs: Record<string, Tensor>, outputs: Record<string, Tensor>): void {
  const outs = Object.entries(outputs);
  outs.forEach(([o, ot], n) => {
    for (const [i, it] of Object.entries(inputs)) expectDistinct(kernel, { [i]: it, [o]: ot });
    for (const [o2, ot2] of outs.slice(n + 1)) expectDistinct(kernel, { [o]: ot, [o2]: ot2 });
  });
}

/** The shaders' override constants for these dims and options. */
function overridesFor(d: Dims, opts: CrossAttentionOptions): Record<string, number> {
  const version = opts.version ?? 4;
  return { WG: opts.workgroupSize ?? WG, D4_FIXED: version === 2 ? d.D / 4 : 0, GRID_BH: version >= 3 ? 1 : 0 };
}

/** Workgroups for `rows` rows per (b, h): folded flat 1-D (versions 1, 2) or (ceil(rows / WG), B*H) (version 3). */
function gridFor(kernel: string, d: Dims, rows: number, opts: CrossAttentionOptions, gpu: Gpu): [number, number?] {
  const wg = opts.workgroupSize ?? WG;
  if ((opts.version ?? 4) < 3) return foldGrid(Math.ceil((d.B * d.H * rows) / wg), gpu.limits.maxComputeWorkgroupsPerDimension);
  const grid: [number, number] = [Math.ceil(rows / wg), d.B * d.H];
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (grid[0]! > max || grid[1]! > max) {
    throw new KernelError(kernel, describeDims(d, null), `grid [${grid.join(', ')}] exceeds maxComputeWorkgroupsPerDimension ${max}; split the batch`, 'shape');
  }
  return grid;
}

function describeDims(d: Dims, mask: Tensor | null): string {
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
  const kn = crossAttentionForwardKernel.name;
  const d = checkDims(kn, q, k, v, mask, opts);
  expectShape(kn, 'out', out, [d.B, d.Tq, d.C]);
  expectShape(kn, 'lse', lse, [d.B, d.H, d.Tq]);
  expectOutputsDistinct(kn, mask ? { q, k, v, mask } : { q, k, v }, { out, lse });
  const rb = (opts.version ?? 4) >= 4;
  const wg = opts.workgroupSize ?? (rb ? crossAttentionForwardRbKernel.overrides!.WG! : WG);
  await gpu.dispatch(rb ? crossAttentionForwardRbKernel : crossAttentionForwardKernel, {
    // Without a mask the shader never reads binding 3: k stands in for it (read-only, so legal to bind twice).
    tensors: [q, k, v, mask ?? k, out, lse],
    params: { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, has_mask: mask ? 1 : 0, scale: d.scale },
    grid: rb ? gridFor(kn, d, Math.ceil(d.Tq / CROSS_ATTENTION_RB), { ...opts, workgroupSize: wg }, gpu) : gridFor(kn, d, d.Tq, opts, gpu),
    overrides: rb ? { WG: wg } : overridesFor(d, opts),
    shapes: describeDims(d, mask),
  });
}

const drowScratch = new WeakMap<Gpu, Tensor>();

function drowFor(gpu: Gpu, n: number): Tensor {
  let t = drowScratch.get(gpu);
  if (!t || t.size < n) {
    // The old scratch is not destroyed: queued dispatches may still reference it. GC reclaims it.
    t = gpu.empty([Math.max(n, 1024)], 'cross-attention drow scratch');
    drowScratch.set(gpu, t);
  }
  return t;
}

/**
 * dq [B, Tq, C], dk, dv [B, Tk, C] from dout [B, Tq, C] and the forward's out and lse. Three dispatches:
 * Drow pre-pass, dq, then dk/dv. Drow goes to `opts.drow` or a cached per-device scratch.
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
  const d = checkDims(kn, q, k, v, mask, opts);
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
  const drow = opts.drow ?? drowFor(gpu, rows);
  expectOutputsDistinct(kn, { q, k, v, lse, dout, drow, ...(mask ? { mask } : {}) }, { dq, dk, dv });
  expectOutputsDistinct(kn, { out, dout }, { drow });

  const wg = opts.workgroupSize ?? WG;
  const shapes = describeDims(d, mask);
  await gpu.dispatch(crossAttentionDrowKernel, {
    tensors: [out, dout, drow],
    params: { B: d.B, H: d.H, Tq: d.Tq, D: d.D },
    grid: [Math.ceil(rows / wg)],
    overrides: { WG: wg },
    shapes,
  });
  const params = {
    B: d.B,
    H: d.H,
    Tq: d.Tq,
    Tk: d.Tk,
    D: d.D,
    has_mask: mask ? 1 : 0,
    scale: d.scale,
    accumulate: opts.accumulate ? 1 : 0,
  };
  const tensors = [q, k, v, mask ?? k, lse, dout, drow, dq, dk, dv];
  if ((opts.version ?? 4) >= 4) {
    const rbOpts = { ...opts, workgroupSize: opts.workgroupSize ?? crossAttentionBackwardDqRbKernel.overrides!.WG! };
    const overrides = { WG: rbOpts.workgroupSize };
    await gpu.dispatch(crossAttentionBackwardDqRbKernel, { tensors, params, grid: gridFor(kn, d, Math.ceil(d.Tq / CROSS_ATTENTION_RB), rbOpts, gpu), overrides, shapes });
    await gpu.dispatch(crossAttentionBackwardDkDvRbKernel, { tensors, params, grid: gridFor(kn, d, Math.ceil(d.Tk / CROSS_ATTENTION_RB), rbOpts, gpu), overrides, shapes });
    return;
  }
  await gpu.dispatch(crossAttentionBackwardDqKernel, {
    tensors,
    params,
    grid: gridFor(kn, d, d.Tq, opts, gpu),
    overrides: overridesFor(d, opts),
    shapes,
  });
  await gpu.dispatch(crossAttentionBackwardDkDvKernel, {
    tensors,
    params,
    grid: gridFor(kn, d, d.Tk, opts, gpu),
    overrides: overridesFor(d, opts),
    shapes,
  });
}
