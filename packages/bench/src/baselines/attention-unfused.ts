// Unfused multi-head cross-attention: the baseline that `bench attention` compares the fused op with (bench
// only; the product runs the fused op, packages/kernels/src/ops/cross-attention.ts).
// Computes exactly what crossAttentionForward / crossAttentionBackward compute (per-head
// softmax(scale * q k^T over kept keys) v, fully masked rows -> 0), but step by step, materialising the
// scores S and probabilities P [B, H, Tq, Tk] in memory:
//   forward:  Qh, Kh, Vh = split(q, k, v)            [B, H, T, D]       (attention-heads.fwd.split)
//             S  = Qh @ Kh^T                          [B*H, Tq, Tk]      (matmul.fwd, transB)
//             P  = softmax(scale * S, key mask)       [B*H, Tq, Tk]      (softmax.fwd, rowsPerMaskRow = H*Tq)
//             Oh = P @ Vh                             [B*H, Tq, D]       (matmul.fwd)
//             out = merge(Oh)                         [B, Tq, C]         (attention-heads.fwd.merge)
//   backward: dOh = split(dout); dP = dOh @ Vh^T, dVh = P^T @ dOh        (matmul backward of Oh = P @ Vh)
//             dS = scale * P * (dP - rowsum(dP * P))                     (softmax.bwd)
//             dQh = dS @ Kh, dKh = dS^T @ Qh                             (matmul backward of S = Qh @ Kh^T)
//             dq, dk, dv = merge(dQh, dKh, dVh)
// The key mask only enters through P (masked keys and fully masked rows have P = 0), so the backward
// needs no mask. Every intermediate lives in an AttentionUnfusedWorkspace (llm.c style, preallocated).

import headsSource from '../../../../shaders/attention-heads.fwd.wgsl';
import {
  KernelError,
  expectDistinct,
  expectPositiveInt,
  expectShape,
  expectSize,
  matmulBackward,
  matmulForward,
  softmaxBackward,
  softmaxForward,
  type Gpu,
  type KernelDef,
  type Tensor,
} from '@emofuse/kernels';

const WG = 256;

const headsBindings = [
  { name: 'src', access: 'read' },
  { name: 'dst', access: 'read_write' },
] as const;
const headsParams = [
  ['B', 'u32'],
  ['T', 'u32'],
  ['H', 'u32'],
  ['D', 'u32'],
] as const;

/** [B, T, H, D] -> [B, H, T, D]. */
export const attentionSplitHeadsKernel: KernelDef = {
  name: 'attention-heads.fwd.split',
  source: headsSource,
  entryPoint: 'split',
  bindings: headsBindings,
  params: headsParams,
  overrides: { WG },
  foldable: true,
};

/** [B, H, T, D] -> [B, T, H, D]. */
export const attentionMergeHeadsKernel: KernelDef = {
  name: 'attention-heads.fwd.merge',
  source: headsSource,
  entryPoint: 'merge',
  bindings: headsBindings,
  params: headsParams,
  overrides: { WG },
  foldable: true,
};

export interface AttentionHeadsDims {
  B: number;
  T: number;
  H: number;
  D: number;
}

async function permuteHeads(gpu: Gpu, def: KernelDef, src: Tensor, dst: Tensor, d: AttentionHeadsDims): Promise<void> {
  const k = def.name;
  for (const [n, v] of Object.entries(d)) expectPositiveInt(k, n, v);
  const size = d.B * d.T * d.H * d.D;
  expectSize(k, 'src', src, size);
  expectSize(k, 'dst', dst, size);
  expectDistinct(k, { src, dst });
  await gpu.dispatch(def, {
    tensors: [src, dst],
    params: { B: d.B, T: d.T, H: d.H, D: d.D },
    grid: [Math.ceil(size / WG)],
    shapes: `B=${d.B} T=${d.T} H=${d.H} D=${d.D}`,
  });
}

/** dst [B, H, T, D] = src [B, T, C = H*D] with heads split out. */
export function attentionSplitHeads(gpu: Gpu, src: Tensor, dst: Tensor, dims: AttentionHeadsDims): Promise<void> {
  return permuteHeads(gpu, attentionSplitHeadsKernel, src, dst, dims);
}

/** dst [B, T, C = H*D] = src [B, H, T, D] with heads merged back (inverse of attentionSplitHeads). */
export function attentionMergeHeads(gpu: Gpu, src: Tensor, dst: Tensor, dims: AttentionHeadsDims): Promise<void> {
  return permuteHeads(gpu, attentionMergeHeadsKernel, src, dst, dims);
}

export interface AttentionUnfusedDims {
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  D: number;
}

/** Every intermediate of the unfused path. The forward fills qh, kh, vh and p, which the backward reads. */
export interface AttentionUnfusedWorkspace extends AttentionUnfusedDims {
  qh: Tensor; // [B, H, Tq, D]
  kh: Tensor; // [B, H, Tk, D]
  vh: Tensor; // [B, H, Tk, D]
  s: Tensor; // [B, H, Tq, Tk]  scores S (forward), dP (backward)
  p: Tensor; // [B, H, Tq, Tk]  probabilities P, saved for the backward
  ds: Tensor; // [B, H, Tq, Tk] dS (backward)
  oh: Tensor; // [B, H, Tq, D]  per-head output (forward), dOh (backward)
  dqh: Tensor; // [B, H, Tq, D]
  dkh: Tensor; // [B, H, Tk, D]
  dvh: Tensor; // [B, H, Tk, D]
}

/** Allocates the workspace for one attention shape (about 3*B*H*Tq*Tk + 3*B*H*(Tq + 2*Tk)*D floats). */
export function createAttentionUnfusedWorkspace(gpu: Gpu, dims: AttentionUnfusedDims): AttentionUnfusedWorkspace {
  const { B, Tq, Tk, H, D } = dims;
  for (const [n, v] of Object.entries({ B, Tq, Tk, H, D })) expectPositiveInt('attention-unfused', n, v);
  const t = (shape: number[], label: string) => gpu.empty(shape, `attention-unfused ${label}`);
  return {
    B,
    Tq,
    Tk,
    H,
    D,
    qh: t([B, H, Tq, D], 'qh'),
    kh: t([B, H, Tk, D], 'kh'),
    vh: t([B, H, Tk, D], 'vh'),
    s: t([B, H, Tq, Tk], 's'),
    p: t([B, H, Tq, Tk], 'p'),
    ds: t([B, H, Tq, Tk], 'ds'),
    oh: t([B, H, Tq, D], 'oh'),
    dqh: t([B, H, Tq, D], 'dqh'),
    dkh: t([B, H, Tk, D], 'dkh'),
    dvh: t([B, H, Tk, D], 'dvh'),
  };
}

/** Releases the workspace's buffers. */
export function destroyAttentionUnfusedWorkspace(ws: AttentionUnfusedWorkspace): void {
  for (const t of [ws.qh, ws.kh, ws.vh, ws.s, ws.p, ws.ds, ws.oh, ws.dqh, ws.dkh, ws.dvh]) t.destroy();
}

export interface AttentionUnfusedOptions {
  heads: number;
  /** Score scale; defaults to 1/sqrt(D). */
  scale?: number;
}

function checkWorkspace(
  kernel: string,
  ws: AttentionUnfusedWorkspace,
  B: number,
  Tq: number,
  Tk: number,
  C: number,
  opts: AttentionUnfusedOptions,
): number {
  expectPositiveInt(kernel, 'heads', opts.heads);
  if (ws.B !== B || ws.Tq !== Tq || ws.Tk !== Tk || ws.H !== opts.heads || ws.H * ws.D !== C) {
    throw new KernelError(
      kernel,
      '',
      `workspace is for B=${ws.B} Tq=${ws.Tq} Tk=${ws.Tk} H=${ws.H} D=${ws.D}, tensors are B=${B} Tq=${Tq} Tk=${Tk} C=${C} with ` +
        `heads=${opts.heads}`,
      'shape',
    );
  }
  const scale = opts.scale ?? 1 / Math.sqrt(ws.D);
  if (!Number.isFinite(scale)) throw new KernelError(kernel, '', `scale must be finite, got ${scale}`, 'shape');
  return scale;
}

/**
 * out [B, Tq, C] = per-head softmax(scale * q k^T over kept keys) v, materialising S and P in `ws`.
 * q [B, Tq, C]; k, v [B, Tk, C]; mask [B, Tk] (1 keep / 0 pad) or null. A fully masked row gives 0.
 */
export async function attentionUnfusedForward(
  gpu: Gpu,
  q: Tensor, // [B, Tq, C]
  k: Tensor, // [B, Tk, C]
  v: Tensor, // [B, Tk, C]
  mask: Tensor | null, // [B, Tk]
  out: Tensor, // [B, Tq, C]
  ws: AttentionUnfusedWorkspace,
  opts: AttentionUnfusedOptions,
): Promise<void> {
  const kn = 'attention-unfused.fwd';
  if (q.shape.length !== 3 || k.shape.length !== 3) {
    throw new KernelError(kn, '', `q and k must be [B, T, C], got q[${q.shape.join(', ')}] k[${k.shape.join(', ')}]`, 'shape');
  }
  const [B, Tq, C] = q.shape as [number, number, number];
  const Tk = k.shape[1]!;
  expectShape(kn, 'k', k, [B, Tk, C]);
  expectShape(kn, 'v', v, [B, Tk, C]);
  expectShape(kn, 'out', out, [B, Tq, C]);
  if (mask) expectShape(kn, 'mask', mask, [B, Tk]);
  const scale = checkWorkspace(kn, ws, B, Tq, Tk, C, opts);
  const { H, D } = ws;
  const BH = B * H;
  await attentionSplitHeads(gpu, q, ws.qh, { B, T: Tq, H, D });
  await attentionSplitHeads(gpu, k, ws.kh, { B, T: Tk, H, D });
  await attentionSplitHeads(gpu, v, ws.vh, { B, T: Tk, H, D });
  await matmulForward(gpu, ws.qh, ws.kh, ws.s, { batch: BH, M: Tq, N: Tk, K: D }, { transB: true }); // S = Qh Kh^T
  await softmaxForward(gpu, ws.s, ws.p, { mask: mask ?? undefined, rowsPerMaskRow: H * Tq, scale });
  await matmulForward(gpu, ws.p, ws.vh, ws.oh, { batch: BH, M: Tq, N: D, K: Tk }); // Oh = P Vh
  await attentionMergeHeads(gpu, ws.oh, out, { B, T: Tq, H, D });
}

/**
 * dq [B, Tq, C], dk, dv [B, Tk, C] from dout [B, Tq, C] and what the forward left in `ws` (Qh, Kh, Vh, P).
 * `opts` must be the forward's. Overwrites dq, dk, dv.
 */
export async function attentionUnfusedBackward(
  gpu: Gpu,
  dout: Tensor, // [B, Tq, C]
  dq: Tensor, // [B, Tq, C]
  dk: Tensor, // [B, Tk, C]
  dv: Tensor, // [B, Tk, C]
  ws: AttentionUnfusedWorkspace,
  opts: AttentionUnfusedOptions,
): Promise<void> {
  const kn = 'attention-unfused.bwd';
  const { B, Tq, Tk, H, D } = ws;
  const C = H * D;
  expectShape(kn, 'dout', dout, [B, Tq, C]);
  expectShape(kn, 'dq', dq, [B, Tq, C]);
  expectShape(kn, 'dk', dk, [B, Tk, C]);
  expectShape(kn, 'dv', dv, [B, Tk, C]);
  expectDistinct(kn, { dq, dk, dv });
  const scale = checkWorkspace(kn, ws, B, Tq, Tk, C, opts);
  const BH = B * H;
  const dOh = ws.oh;
  const dP = ws.s;
  await attentionSplitHeads(gpu, dout, dOh, { B, T: Tq, H, D });
  // Oh = P @ Vh  ->  dP = dOh @ Vh^T, dVh = P^T @ dOh.
  await matmulBackward(gpu, { dc: dOh, a: ws.p, b: ws.vh, dA: dP, dB: ws.dvh }, { batch: BH, M: Tq, N: D, K: Tk });
  await softmaxBackward(gpu, ws.p, dP, ws.ds, { scale });
  // S = Qh @ Kh^T  ->  dQh = dS @ Kh, dKh = dS^T @ Qh.
  await matmulBackward(gpu, { dc: ws.ds, a: ws.qh, b: ws.kh, dA: ws.dqh, dB: ws.dkh }, { batch: BH, M: Tq, N: Tk, K: D }, { transB: true });
  await attentionMergeHeads(gpu, ws.dqh, dq, { B, T: Tq, H, D });
  await attentionMergeHeads(gpu, ws.dkh, dk, { B, T: Tk, H, D });
  await attentionMergeHeads(gpu, ws.dvh, dv, { B, T: Tk, H, D });
}
