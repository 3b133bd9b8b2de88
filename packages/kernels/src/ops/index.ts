// The op table: one record per ops/<op>.ts (its KernelDefs, wrappers and self-check cases). `allKernels`
// (the Params-order test, `emofuse gpu --check`'s compile pass) and `SELF_CHECKS` (its numerical pass)
// derive from it. Adding an op: write ops/<op>.ts with its record, ref/<op>.ts, add the record here.

import type { Op } from '../op.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { adamwOp } from './adamw.ts';
import { addOp } from './add.ts';
import { axpyOp } from './axpy.ts';
import { concatTimeOp } from './concat-time.ts';
import { crossAttentionOp } from './cross-attention.ts';
import { crossEntropyOp } from './cross-entropy.ts';
import { dropoutOp } from './dropout.ts';
import { embeddingOp } from './embedding.ts';
import { gateOp } from './gate.ts';
import { geluOp } from './gelu.ts';
import { gradNormOp } from './grad-norm.ts';
import { layerNormOp } from './layer-norm.ts';
import { matmulOp } from './matmul.ts';
import { meanPoolOp } from './mean-pool.ts';
import { softmaxOp } from './softmax.ts';

export * from './check.ts';
export * from './adamw.ts';
export * from './add.ts';
export * from './axpy.ts';
export * from './concat-time.ts';
export * from './cross-attention.ts';
export * from './cross-entropy.ts';
export * from './dropout.ts';
export * from './embedding.ts';
export * from './gate.ts';
export * from './gelu.ts';
export * from './grad-norm.ts';
export * from './layer-norm.ts';
export * from './matmul.ts';
export * from './mean-pool.ts';
export * from './softmax.ts';

/** Every op, in the order `emofuse gpu --check` compiles and checks them. */
export const OPS: readonly Op[] = [
  matmulOp,
  crossAttentionOp,
  softmaxOp,
  layerNormOp,
  geluOp,
  addOp,
  dropoutOp,
  meanPoolOp,
  crossEntropyOp,
  adamwOp,
  gradNormOp,
  axpyOp,
  concatTimeOp,
  gateOp,
  embeddingOp,
];

export const allKernels: readonly KernelDef[] = OPS.flatMap((op) => op.kernels);
export const SELF_CHECKS = OPS.flatMap((op) => op.checks);
