// `bench kernels`, matmul: C [M, N] = A [M, K] @ B [K, N] (one batch, row-major), square 256..2048 and the
// fusion model's projections. Our numbered versions (llm.c style: earlier ones stay, so progress is visible)
// against ORT MatMul (CPU and WebGPU EPs) and torch.matmul on the CPU. FLOPs 2*M*N*K.
// Large shapes are validated on a sample of rows (every column of 16 evenly spaced rows, plus the last):
// a full float64 reference of 2048^3 would take longer than the whole suite.

import { TOL, matmulForward, randomF32, type Gpu } from '@emofuse/kernels';
import type { BenchCase, Variant } from './harness.ts';
import { gpuVariant } from './gpu-variant.ts';
import { ortVariant } from './ort-peer.ts';
import { torchVariant } from './torch-peer.ts';

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  /** What the shape is in the model. */
  what: string;
}

export const MATMUL_SHAPES: MatmulShape[] = [
  { M: 256, N: 256, K: 256, what: 'square' },
  { M: 512, N: 512, K: 512, what: 'square' },
  { M: 1024, N: 1024, K: 1024, what: 'square' },
  { M: 2048, N: 2048, K: 2048, what: 'square' },
  { M: 2048, N: 256, K: 768, what: 'text features [B*Tq, 768] @ W [768, C]' },
  { M: 4096, N: 256, K: 256, what: 'audio q/k/v projection [B*Tk, C] @ W [C, C]' },
  { M: 2048, N: 1024, K: 256, what: 'feed-forward up [B*Tq, C] @ W [C, 4C]' },
];
export const MATMUL_QUICK_SHAPES: MatmulShape[] = [{ M: 67, N: 45, K: 33, what: 'tiny, not tile multiples' }];

/**
 * Our matmul versions, oldest first. Each is the op with a set of override constants (or, later, another
 * shader); the newest is the baseline. v1: 8x8 invocations, each a 4x4 block (TM = 4 rows x one vec4).
 */
export const MATMUL_VERSIONS: Array<{ name: string; overrides: Record<string, number>; note: string }> = [
  { name: 'matmul v1 (ours)', overrides: { WG_X: 8, WG_Y: 8, TM: 4, KC: 64 }, note: 'WG 8x8, TM=4 x vec4, no workgroup memory' },
];

function rowsToCheck(M: number): number[] {
  if (M <= 256) return Array.from({ length: M }, (_, i) => i);
  const rows = Array.from({ length: 16 }, (_, i) => Math.floor((i * M) / 16));
  rows.push(M - 1);
  return rows;
}

function pickRows(c: ArrayLike<number>, rows: number[], N: number): Float32Array {
  const out = new Float32Array(rows.length * N);
  rows.forEach((r, i) => {
    for (let n = 0; n < N; n++) out[i * N + n] = c[r * N + n]!;
  });
  return out;
}

/** float64 C rows `rows` of A @ B. */
function referenceRows(a: Float32Array, b: Float32Array, s: MatmulShape, rows: number[]): Float64Array {
  const { N, K } = s;
  const out = new Float64Array(rows.length * N);
  rows.forEach((r, i) => {
    const o = i * N;
    for (let k = 0; k < K; k++) {
      const av = a[r * K + k]!;
      const bo = k * N;
      for (let n = 0; n < N; n++) out[o + n] += av * b[bo + n]!;
    }
  });
  return out;
}

export function matmulCases(gpu: Gpu, shapes: MatmulShape[], sets: number): BenchCase[] {
  return shapes.map((s) => {
    const { M, N, K } = s;
    let data: Array<{ a: Float32Array; b: Float32Array }> | null = null;
    const getData = () =>
      (data ??= Array.from({ length: sets }, (_, i) => ({ a: randomF32(M * K, 7000 + 10 * i), b: randomF32(K * N, 7001 + 10 * i) })));
    const rows = rowsToCheck(M);
    const select = (c: ArrayLike<number>) => pickRows(c, rows, N);
    const ours: Variant[] = MATMUL_VERSIONS.map((v) =>
      gpuVariant(
        gpu,
        v.name,
        () => {
          const g = getData().map((d) => ({ a: gpu.upload(d.a, [M, K]), b: gpu.upload(d.b, [K, N]) }));
          const c = gpu.empty([M, N]);
          return {
            dispatch: (i) =>
              matmulForward(gpu, g[i % g.length]!.a, g[i % g.length]!.b, c, { batch: 1, M, N, K }, { overrides: v.overrides }),
            outputs: [c],
            owned: [c, ...g.flatMap((t) => [t.a, t.b])],
          };
        },
        v.note,
      ),
    );
    const ort = (ep: 'cpu' | 'webgpu') =>
      ortVariant({
        name: `ORT MatMul ${ep === 'cpu' ? 'CPU' : 'WebGPU'}`,
        ep,
        node: { opType: 'MatMul' },
        inputs: { A: [M, K], B: [K, N] },
        output: ['C', [M, N]],
        data: (i) => [getData()[i % sets]!.a, getData()[i % sets]!.b],
        sets,
      });
    const torch = torchVariant({
      name: 'PyTorch matmul CPU',
      op: 'matmul',
      pass: 'fwd',
      shape: { M, N, K },
      inputShapes: [
        [M, K],
        [K, N],
      ],
      data: (i) => [getData()[i]!.a, getData()[i]!.b],
      outputs: 1,
      sets,
    });
    const variants = [...ours, ort('cpu'), ort('webgpu'), torch];
    return {
      suite: 'kernels',
      op: 'matmul',
      pass: 'fwd',
      shape: { M, N, K },
      flops: 2 * M * N * K,
      flopsFormula: `2*M*N*K; ${s.what}${rows.length < M ? `; validated on ${rows.length} of ${M} rows` : ''}`,
      tol: TOL.matmul,
      reference: () => [referenceRows(getData()[0]!.a, getData()[0]!.b, s, rows)],
      select: (outs) => outs.map(select),
      variants,
      baseline: MATMUL_VERSIONS[MATMUL_VERSIONS.length - 1]!.name,
    } satisfies BenchCase;
  });
}
