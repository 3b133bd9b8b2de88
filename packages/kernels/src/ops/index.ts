// Every op's wrappers, and `allKernels`: every KernelDef, for the Params-order test and `emofuse gpu --check`.

import type { KernelDef } from '../runtime/kernel.ts';
import { addForwardKernel } from './add.ts';
import { crossAttentionBackwardDkDvKernel, crossAttentionBackwardDqKernel, crossAttentionDrowKernel, crossAttentionForwardKernel, crossAttentionForwardRbKernel, crossAttentionBackwardDqRbKernel, crossAttentionBackwardDkDvRbKernel } from './cross-attention.ts';
import { geluBackwardKernel, geluForwardKernel } from './gelu.ts';
import { matmulBackwardBiasKernel, matmulForwardKernel } from './matmul.ts';
import { softmaxBackwardRowKernel, softmaxBackwardWorkgroupKernel, softmaxForwardRowKernel, softmaxForwardWorkgroupKernel } from './softmax.ts';
import { layerNormBackwardKernel, layerNormBackwardParamsKernel, layerNormForwardKernel } from './layer-norm.ts';
import { attentionMergeHeadsKernel, attentionSplitHeadsKernel } from './attention-unfused.ts';
import { dropoutBackwardKernel, dropoutForwardKernel } from './dropout.ts';
import { meanPoolBackwardKernel, meanPoolForwardKernel } from './mean-pool.ts';
import { crossEntropyKernel } from './cross-entropy.ts';
import { adamwKernel } from './adamw.ts';
import { gradNormFinalKernel, gradNormPartialKernel } from './grad-norm.ts';

export * from './add.ts';
export * from './cross-attention.ts';
export * from './gelu.ts';
export * from './matmul.ts';
export * from './softmax.ts';
export * from './layer-norm.ts';
export * from './attention-unfused.ts';
export * from './dropout.ts';
export * from './mean-pool.ts';
export * from './cross-entropy.ts';
export * from './adamw.ts';
export * from './grad-norm.ts';

export const allKernels: readonly KernelDef[] = [
  addForwardKernel,
  crossAttentionForwardKernel,
  crossAttentionForwardRbKernel,
  crossAttentionDrowKernel,
  crossAttentionBackwardDqKernel,
  crossAttentionBackwardDkDvKernel,
  crossAttentionBackwardDqRbKernel,
  crossAttentionBackwardDkDvRbKernel,
  geluForwardKernel,
  geluBackwardKernel,
  matmulForwardKernel,
  matmulBackwardBiasKernel,
  softmaxForwardRowKernel,
  softmaxForwardWorkgroupKernel,
  softmaxBackwardRowKernel,
  softmaxBackwardWorkgroupKernel,
  layerNormForwardKernel,
  layerNormBackwardKernel,
  layerNormBackwardParamsKernel,
  attentionSplitHeadsKernel,
  attentionMergeHeadsKernel,
  dropoutForwardKernel,
  dropoutBackwardKernel,
  meanPoolForwardKernel,
  meanPoolBackwardKernel,
  crossEntropyKernel,
  adamwKernel,
  gradNormPartialKernel,
  gradNormFinalKernel,
];
