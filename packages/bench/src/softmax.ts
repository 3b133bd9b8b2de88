// `bench kernels`, softmax over the last axis of x [R, N] (attention scores: R = B*H*Tq rows of N = Tk keys),
// no mask, scale 1: our two entry points (one invocation per row, one workgroup per row) against ORT Softmax
// (axis -1) on both EPs and torch.softmax. FLOPs counted as 5*R*N (max, subtract, exp, sum, divide).

import { TOL, randomF32, ref, softmaxForward, type Gpu, type SoftmaxVariant } from '@emofuse/kernels';
import type { BenchCase } from './harness.ts';
import { gpuVariant } from './gpu-variant.ts';
import { ortVariant } from './ort-peer.ts';
import { torchVariant } from './torch-peer.ts';

export const SOFTMAX_SHAPES = [
  { R: 32 * 8 * 64, N: 128, what: 'model scores B*H*Tq x Tk' },
  { R: 8 * 512, N: 512, what: 'T=512 scores' },
  { R: 8 * 1024, N: 1024, what: 'T=1024 scores' },
];
export const SOFTMAX_QUICK_SHAPES = [{ R: 37, N: 45, what: 'tiny' }];

const VERSIONS: Array<{ name: string; variant: SoftmaxVariant; note: string }> = [
  { name: 'softmax v1 row (ours)', variant: 'row', note: 'one invocation per row, three passes over the row' },
  { name: 'softmax v2 workgroup (ours)', variant: 'workgroup', note: 'one workgroup per row, tree reductions in workgroup memory' },
];

export function softmaxCases(gpu: Gpu, shapes: Array<{ R: number; N: number; what: string }>, sets: number): BenchCase[] {
  return shapes.map(({ R, N, what }) => {
    let data: Float32Array[] | null = null;
    // logits as attention produces them: up to +-8
    const getData = () => (data ??= Array.from({ length: sets }, (_, i) => randomF32(R * N, 8000 + i, -8, 8)));
    const ours = VERSIONS.map((v) =>
      gpuVariant(
        gpu,
        v.name,
        () => {
          const xs = getData().map((d) => gpu.upload(d, [R, N]));
          const y = gpu.empty([R, N]);
          return { dispatch: (i) => softmaxForward(gpu, xs[i % xs.length]!, y, { variant: v.variant }), outputs: [y], owned: [y, ...xs] };
        },
        v.note,
      ),
    );
    const ort = (ep: 'cpu' | 'webgpu') =>
      ortVariant({
        name: `ORT Softmax ${ep === 'cpu' ? 'CPU' : 'WebGPU'}`,
        ep,
        node: { opType: 'Softmax', attributes: { axis: -1 } },
        inputs: { X: [R, N] },
        output: ['Y', [R, N]],
        data: (i) => [getData()[i % sets]!],
        sets,
      });
    return {
      suite: 'kernels',
      op: 'softmax',
      pass: 'fwd',
      shape: { R, N },
      flops: 5 * R * N,
      flopsFormula: `5*R*N; ${what}`,
      tol: TOL.softmax,
      reference: () => [ref.softmaxForward(getData()[0]!, R, N)],
      variants: [
        ...ours,
        ort('cpu'),
        ort('webgpu'),
        torchVariant({
          name: 'PyTorch softmax CPU',
          op: 'softmax',
          pass: 'fwd',
          shape: { R, N },
          inputShapes: [[R, N]],
          data: (i) => [getData()[i]!],
          outputs: 1,
          sets,
        }),
      ],
      baseline: VERSIONS[0]!.name,
    } satisfies BenchCase;
  });
}
