// Fused cross-attention, versions 1-5: the earlier kernels `bench attention` still times beside the
// product's (packages/kernels/src/ops/cross-attention.ts, v6), so the progress stays visible (llm.c habit).
// They compute what the product computes; their entry points live in shaders/cross-attention.fwd.wgsl and
// shaders/cross-attention.bwd.wgsl (main, main_dq, main_dkdv: one query or key row per invocation, WG 64;
// main_dq_rb, main_dkdv_rb: v4; v5 runs the product's backward kernels with its own overrides) and they
// share the product's checks and Drow pre-pass.
//   v1: D read at run time, flat 1-D grid over B*H*rows (folded past the device limit);
//   v2: v1 with the head size fixed at pipeline creation (override D4_FIXED = D/4, loops unrolled): one
//       pipeline per head size; measured 1.2-1.7x SLOWER on llvmpipe, kept as a record;
//   v3: v1 with one (b, h) per workgroup (override GRID_BH, grid (ceil(rows / WG), B*H)), so the rows every
//       invocation streams are the same across the workgroup.
//   v4: register blocking (4 rows per invocation, each streamed vec4 feeds 4 rows, WG 16). Its forward is
//       the product's main_rb with the head size read at run time (v6 fixes it per pipeline); its backward (a
//       dq kernel over keys and a dk/dv kernel over queries, each recomputing q.k and dout.v: 7 D-long
//       products per pair) was replaced by v5's (5 per pair).
//   v5: v4's forward; the product's backward kernels (P/dS pass, then dq and dk/dv) with q.k and dout.v in
//       one loop in the P/dS pass (override SPLIT 0) and 4 vec4s of channels per invocation (CB 4) in dq and
//       dk/dv. v6 (the product) splits that loop and uses CB 1 (dq) and 2 (dk/dv).

import bwdSource from '../../../../shaders/cross-attention.bwd.wgsl';
import {
  CROSS_ATTENTION_RB,
  checkCrossAttentionDims,
  crossAttentionBackwardPrepass,
  crossAttentionForward,
  crossAttentionForwardRbKernel,
  crossAttentionGrid,
  describeCrossAttentionDims,
  expectOutputsDistinct,
  expectShape,
  foldGrid,
  KernelError,
  crossAttentionBackwardChunk,
  crossAttentionBackwardDsKernel,
  crossAttentionBackwardGradDqKernel,
  crossAttentionBackwardGradDkDvKernel,
  type CrossAttentionBackwardOptions,
  type CrossAttentionDims,
  type CrossAttentionOptions,
  type Gpu,
  type KernelDef,
  type Tensor,
} from '@emofuse/kernels';

export type CrossAttentionVersion = 1 | 2 | 3 | 4 | 5;

/** Bindings and Params of every kernel in shaders/cross-attention.bwd.wgsl (versions 1-4). */
export const CROSS_ATTENTION_BACKWARD_BINDINGS = [
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

export const CROSS_ATTENTION_BACKWARD_PARAMS = [
  ['B', 'u32'],
  ['H', 'u32'],
  ['Tq', 'u32'],
  ['Tk', 'u32'],
  ['D', 'u32'],
  ['has_mask', 'u32'],
  ['scale', 'f32'],
  ['accumulate', 'u32'],
] as const;

/** v4 backward: RB query rows (dq) or key rows (dk, dv) per invocation, grid (ceil(rows / (RB*WG)), B*H). */
export const crossAttentionBackwardDqRbKernel: KernelDef = {
  name: 'cross-attention.bwd.dq.rb',
  source: bwdSource,
  entryPoint: 'main_dq_rb',
  bindings: CROSS_ATTENTION_BACKWARD_BINDINGS,
  params: CROSS_ATTENTION_BACKWARD_PARAMS,
  overrides: { WG: 16, D4_FIXED: 0, GRID_BH: 1 },
  foldable: false, // the grid is (x, B*H); crossAttentionGrid refuses one past the device limit
};

export const crossAttentionBackwardDkDvRbKernel: KernelDef = {
  ...crossAttentionBackwardDqRbKernel,
  name: 'cross-attention.bwd.dkdv.rb',
  entryPoint: 'main_dkdv_rb',
};

export interface CrossAttentionVersionOptions extends CrossAttentionOptions {
  version: CrossAttentionVersion;
}

/** Rows per workgroup (one invocation each), unless `workgroupSize` says otherwise. */
const WG = 64;
const V1_OVERRIDES = { WG, D4_FIXED: 0, GRID_BH: 0 };

export const crossAttentionForwardV1Kernel: KernelDef = {
  ...crossAttentionForwardRbKernel,
  name: 'cross-attention.fwd',
  entryPoint: 'main',
  overrides: V1_OVERRIDES,
  foldable: false, // the wrapper folds the flat grid itself (v1, v2) or uses (x, B*H) (v3)
};

export const crossAttentionBackwardDqV1Kernel: KernelDef = {
  ...crossAttentionBackwardDqRbKernel,
  name: 'cross-attention.bwd.dq',
  entryPoint: 'main_dq',
  overrides: V1_OVERRIDES,
  foldable: false, // see crossAttentionForwardV1Kernel
};

export const crossAttentionBackwardDkDvV1Kernel: KernelDef = {
  ...crossAttentionBackwardDkDvRbKernel,
  name: 'cross-attention.bwd.dkdv',
  entryPoint: 'main_dkdv',
  overrides: V1_OVERRIDES,
  foldable: false, // see crossAttentionForwardV1Kernel
};

/** The shaders' override constants for a version: v2 puts the head size in the pipeline (and its cache key). */
function overridesFor(d: CrossAttentionDims, o: CrossAttentionVersionOptions): Record<string, number> {
  return { WG: o.workgroupSize ?? WG, D4_FIXED: o.version === 2 ? d.D / 4 : 0, GRID_BH: o.version === 3 ? 1 : 0 };
}

/** Workgroups for `rows` rows per (b, h): folded flat 1-D (v1, v2) or (ceil(rows / WG), B*H) (v3). */
function gridFor(kernel: string, d: CrossAttentionDims, rows: number, o: CrossAttentionVersionOptions, gpu: Gpu): [number, number?] {
  const wg = o.workgroupSize ?? WG;
  if (o.version === 3) return crossAttentionGrid(kernel, d, rows, wg, gpu);
  return foldGrid(Math.ceil((d.B * d.H * rows) / wg), gpu.limits.maxComputeWorkgroupsPerDimension);
}

/** crossAttentionForward with kernel version 1-5 (same shapes, options and results as the product's; v5's is v4's). */
export async function crossAttentionForwardVersion(
  gpu: Gpu,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  out: Tensor,
  lse: Tensor,
  opts: CrossAttentionVersionOptions,
): Promise<void> {
  if (opts.version === 4 || opts.version === 5) {
    // v4 (and v5): the product's main_rb with the head size read at run time; v6 fixed it per pipeline.
    return crossAttentionForward(gpu, q, k, v, mask, out, lse, { ...opts, fixedHeadSize: false });
  }
  const kn = crossAttentionForwardV1Kernel.name;
  const d = checkCrossAttentionDims(kn, q, k, v, mask, opts);
  expectShape(kn, 'out', out, [d.B, d.Tq, d.C]);
  expectShape(kn, 'lse', lse, [d.B, d.H, d.Tq]);
  expectOutputsDistinct(kn, mask ? { q, k, v, mask } : { q, k, v }, { out, lse });
  await gpu.dispatch(crossAttentionForwardV1Kernel, {
    tensors: [q, k, v, mask ?? k, out, lse],
    params: { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, has_mask: mask ? 1 : 0, scale: d.scale },
    grid: gridFor(kn, d, d.Tq, opts, gpu),
    overrides: overridesFor(d, opts),
    shapes: describeCrossAttentionDims(d, mask),
  });
}

/** crossAttentionBackward with kernel version 1-5: the product's Drow pre-pass, then this version's dq and dk/dv. */
export async function crossAttentionBackwardVersion(
  gpu: Gpu,
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
  opts: CrossAttentionBackwardOptions & CrossAttentionVersionOptions,
): Promise<void> {
  const kn = 'cross-attention.bwd';
  if (opts.version === 5) return crossAttentionBackwardV5(gpu, q, k, v, mask, out, lse, dout, dq, dk, dv, opts);
  const v4 = opts.version === 4;
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
  const tensors = [q, k, v, mask ?? k, lse, dout, drow, dq, dk, dv];
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
  if (v4) {
    const wg = opts.workgroupSize ?? crossAttentionBackwardDqRbKernel.overrides!.WG!;
    const overrides = { WG: wg };
    await gpu.dispatch(crossAttentionBackwardDqRbKernel, {
      tensors,
      params,
      grid: crossAttentionGrid(kn, d, Math.ceil(d.Tq / CROSS_ATTENTION_RB), wg, gpu),
      overrides,
      shapes,
    });
    await gpu.dispatch(crossAttentionBackwardDkDvRbKernel, {
      tensors,
      params,
      grid: crossAttentionGrid(kn, d, Math.ceil(d.Tk / CROSS_ATTENTION_RB), wg, gpu),
      overrides,
      shapes,
    });
    return;
  }
  const overrides = overridesFor(d, opts);
  await gpu.dispatch(crossAttentionBackwardDqV1Kernel, { tensors, params, grid: gridFor(kn, d, d.Tq, opts, gpu), overrides, shapes });
  await gpu.dispatch(crossAttentionBackwardDkDvV1Kernel, { tensors, params, grid: gridFor(kn, d, d.Tk, opts, gpu), overrides, shapes });
}

/** v5's backward: the product's wrapper loop and kernels with v5's overrides (SPLIT 0 in the P/dS pass, CB 4). */
async function crossAttentionBackwardV5(
  gpu: Gpu,
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
  const { p, ds } = v5Scratch(gpu, chunk * d.Tq * Tk4);
  const wg = opts.workgroupSize ?? 16;
  const CB = 4;
  const channelBlocks = Math.ceil(d.D / 4 / CB);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const grids = { ds: Math.ceil(d.Tq / CROSS_ATTENTION_RB / wg), dq: Math.ceil(d.Tq / 4 / wg), dkdv: Math.ceil(d.Tk / 4 / wg) };
  if (Object.values(grids).some((x) => x > max))
    throw new KernelError(kn, shapes, `grid exceeds maxComputeWorkgroupsPerDimension ${max}; shorten the sequences`, 'shape');
  for (let bh0 = 0; bh0 < d.B * d.H; bh0 += chunk) {
    const n = Math.min(chunk, d.B * d.H - bh0);
    await gpu.dispatch(crossAttentionBackwardDsKernel, {
      tensors: [q, k, v, mask ?? k, lse, dout, drow, p, ds],
      params: { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, has_mask: mask ? 1 : 0, scale: d.scale, bh0, Tk4 },
      grid: [grids.ds, 1, n],
      overrides: { WG: wg, SPLIT: 0 },
      shapes,
    });
    const tensors = [q, k, dout, p, ds, dq, dk, dv];
    const params = { B: d.B, H: d.H, Tq: d.Tq, Tk: d.Tk, D: d.D, bh0, Tk4, accumulate: opts.accumulate ? 1 : 0 };
    await gpu.dispatch(crossAttentionBackwardGradDqKernel, {
      tensors,
      params,
      grid: [grids.dq, channelBlocks, n],
      overrides: { WG: wg, CB },
      shapes,
    });
    await gpu.dispatch(crossAttentionBackwardGradDkDvKernel, {
      tensors,
      params,
      grid: [grids.dkdv, channelBlocks, n],
      overrides: { WG: wg, CB },
      shapes,
    });
  }
}

/** v5's own P and dS scratch per device (not the product's), cached and grown on demand like the product's. */
const v5Scratches = new WeakMap<Gpu, { p: Tensor; ds: Tensor }>();
function v5Scratch(gpu: Gpu, n: number): { p: Tensor; ds: Tensor } {
  let s = v5Scratches.get(gpu);
  if (!s || s.p.size < n) {
    // The old scratch is not destroyed: queued dispatches may still reference it. GC reclaims it.
    s = { p: gpu.empty([n], 'cross-attention v5 p scratch'), ds: gpu.empty([n], 'cross-attention v5 ds scratch') };
    v5Scratches.set(gpu, s);
  }
  return s;
}
