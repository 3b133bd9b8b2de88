// `bench kernels`, layer norm over the last axis of x [R, C] (eps 1e-5): our forward (which also writes
// mean and rstd for the backward) against ORT LayerNormalization (opset 17, axis -1) on both EPs and
// torch.nn.functional.layer_norm. Validated on y. FLOPs counted as 8*R*C.

import { TOL, layerNormForward, randomF32, ref, type Gpu } from '@emofuse/kernels';
import type { BenchCase } from './harness.ts';
import { gpuVariant } from './gpu-variant.ts';
import { ortVariant } from './ort-peer.ts';
import { torchVariant } from './torch-peer.ts';

export const LAYER_NORM_SHAPES = [
  { R: 32 * 64, C: 256, what: 'text tokens B*Tq x C' },
  { R: 32 * 128, C: 256, what: 'audio tokens B*Tk x C' },
  { R: 32 * 128, C: 768, what: 'encoder width 768' },
];
export const LAYER_NORM_QUICK_SHAPES = [{ R: 37, C: 64, what: 'tiny' }];

export function layerNormCases(gpu: Gpu, shapes: Array<{ R: number; C: number; what: string }>, sets: number): BenchCase[] {
  return shapes.map(({ R, C, what }) => {
    let data: Array<{ x: Float32Array; gamma: Float32Array; beta: Float32Array }> | null = null;
    const getData = () =>
      (data ??= Array.from({ length: sets }, (_, i) => ({
        x: randomF32(R * C, 9000 + 3 * i),
        gamma: randomF32(C, 9001 + 3 * i),
        beta: randomF32(C, 9002 + 3 * i),
      })));
    const ours = gpuVariant(
      gpu,
      'layer-norm v1 (ours)',
      () => {
        const g = getData().map((d) => ({ x: gpu.upload(d.x, [R, C]), gamma: gpu.upload(d.gamma), beta: gpu.upload(d.beta) }));
        const [y, mean, rstd] = [gpu.empty([R, C]), gpu.empty([R]), gpu.empty([R])];
        return {
          dispatch: (i) => {
            const t = g[i % g.length]!;
            return layerNormForward(gpu, t.x, t.gamma, t.beta, y, mean, rstd);
          },
          outputs: [y],
          owned: [y, mean, rstd, ...g.flatMap((t) => [t.x, t.gamma, t.beta])],
        };
      },
      'one invocation per row; also writes mean and rstd',
    );
    const ort = (ep: 'cpu' | 'webgpu') =>
      ortVariant({
        name: `ORT LayerNormalization ${ep === 'cpu' ? 'CPU' : 'WebGPU'}`,
        ep,
        node: { opType: 'LayerNormalization', attributes: { axis: -1, epsilon: 1e-5 } },
        inputs: { X: [R, C], Scale: [C], B: [C] },
        output: ['Y', [R, C]],
        data: (i) => {
          const d = getData()[i % sets]!;
          return [d.x, d.gamma, d.beta];
        },
        sets,
      });
    return {
      suite: 'kernels',
      op: 'layer-norm',
      pass: 'fwd',
      shape: { R, C },
      flops: 8 * R * C,
      flopsFormula: `8*R*C; ${what}`,
      tol: TOL.layerNorm,
      reference: () => {
        const d = getData()[0]!;
        return [ref.layerNormForward(d.x, d.gamma, d.beta, R, C).y];
      },
      variants: [
        ours,
        ort('cpu'),
        ort('webgpu'),
        torchVariant({
          name: 'PyTorch layer_norm CPU',
          op: 'layer_norm',
          pass: 'fwd',
          shape: { R, C },
          inputShapes: [[R, C], [C], [C]],
          data: (i) => {
            const d = getData()[i]!;
            return [d.x, d.gamma, d.beta];
          },
          outputs: 1,
          sets,
        }),
      ],
      baseline: 'layer-norm v1 (ours)',
    } satisfies BenchCase;
  });
}
