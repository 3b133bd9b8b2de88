// `bench kernels`: matmul, softmax and layer norm, each its own suite file, run together.

import type { Gpu } from '@emofuse/kernels';
import type { BenchCase } from './harness.ts';
import { LAYER_NORM_QUICK_SHAPES, LAYER_NORM_SHAPES, layerNormCases } from './layer-norm.ts';
import { MATMUL_QUICK_SHAPES, MATMUL_SHAPES, matmulCases } from './matmul.ts';
import { SOFTMAX_QUICK_SHAPES, SOFTMAX_SHAPES, softmaxCases } from './softmax.ts';

export { MATMUL_SHAPES, MATMUL_VERSIONS } from './matmul.ts';
export { SOFTMAX_SHAPES } from './softmax.ts';
export { LAYER_NORM_SHAPES } from './layer-norm.ts';

export function kernelCases(gpu: Gpu, quick: boolean, sets: number): BenchCase[] {
  return [
    ...matmulCases(gpu, quick ? MATMUL_QUICK_SHAPES : MATMUL_SHAPES, sets),
    ...softmaxCases(gpu, quick ? SOFTMAX_QUICK_SHAPES : SOFTMAX_SHAPES, sets),
    ...layerNormCases(gpu, quick ? LAYER_NORM_QUICK_SHAPES : LAYER_NORM_SHAPES, sets),
  ];
}
