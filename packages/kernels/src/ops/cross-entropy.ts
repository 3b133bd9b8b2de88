// Weighted cross-entropy (PyTorch's weighted mean, ignore label -1): the scalar loss, per-row losses and dlogits
// in one single-workgroup dispatch. See shaders/cross-entropy.fwd.wgsl.
//
// Labels are an f32 tensor holding integer class ids: every tensor in the runtime is f32 (upload, read, poison),
// f32 holds every integer up to 2^24 exactly (far beyond any K_cls), and -1 (ignore) needs no special encoding.
// Labels given from the CPU are range-checked here; labels already on the GPU are checked by the shader, which
// turns an invalid one into NaN outputs instead of reading out of bounds.

import source from '../../../../shaders/cross-entropy.fwd.wgsl';
import { KernelError, Tensor, type Gpu } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { crossEntropyCheckLabels } from '../ref/cross-entropy.ts';
import { expectDistinct, expectShape, expectSize } from './check.ts';
import type { Op } from '../op.ts';
import * as ref from '../ref/index.ts';
import { TOL } from '../tolerances.ts';

const WG = 256;

export const crossEntropyKernel: KernelDef = {
  name: 'cross-entropy.fwd',
  source,
  entryPoint: 'main',
  bindings: [
    { name: 'logits', access: 'read' },
    { name: 'labels', access: 'read' },
    { name: 'weights', access: 'read' },
    { name: 'loss', access: 'read_write' },
    { name: 'dlogits', access: 'read_write' },
    { name: 'losses', access: 'read_write' },
  ],
  params: [
    ['B', 'u32'],
    ['K_cls', 'u32'],
    ['eps', 'f32'],
  ],
  overrides: { WG },
};

/** Checks CPU labels (-1 or an integer in [0, K_cls)) and uploads them as an f32 [B] tensor. */
export function crossEntropyLabels(gpu: Gpu, labels: ArrayLike<number>, K_cls: number): Tensor {
  try {
    crossEntropyCheckLabels(labels, K_cls);
  } catch (err) {
    throw new KernelError(crossEntropyKernel.name, `B=${labels.length} K_cls=${K_cls}`, (err as Error).message, 'shape');
  }
  return gpu.upload(Float32Array.from(labels), [labels.length], 'labels');
}

/**
 * logits [B, K_cls], labels [B] (a tensor, or CPU values that are checked and uploaded), weights [K_cls] ->
 * loss [1] (weighted mean), dlogits [B, K_cls] (gradient of that loss), losses [B] (unweighted per-row nll);
 * `smoothing` in [0, 1): label smoothing eps (the target (1 - eps) onehot + eps / K_cls).
 */
export async function crossEntropyForwardBackward(
  gpu: Gpu,
  logits: Tensor,
  labels: Tensor | ArrayLike<number>,
  weights: Tensor,
  loss: Tensor,
  dlogits: Tensor,
  losses: Tensor,
  smoothing = 0,
): Promise<void> {
  const k = crossEntropyKernel.name;
  if (logits.shape.length !== 2) throw new KernelError(k, '', `logits must be 2-D [B, K_cls], got [${logits.shape.join(', ')}]`, 'shape');
  const [B, K_cls] = logits.shape as [number, number];
  if (K_cls < 1) throw new KernelError(k, '', 'K_cls must be at least 1', 'shape');
  if (!(smoothing >= 0 && smoothing < 1)) throw new KernelError(k, '', `label smoothing must lie in [0, 1), got ${smoothing}`, 'shape');
  let labelTensor: Tensor;
  if (labels instanceof Tensor) {
    labelTensor = labels;
  } else {
    if (labels.length !== B) throw new KernelError(k, '', `labels must have ${B} values, got ${labels.length}`, 'shape');
    labelTensor = crossEntropyLabels(gpu, labels, K_cls);
  }
  expectShape(k, 'labels', labelTensor, [B]);
  expectShape(k, 'weights', weights, [K_cls]);
  expectSize(k, 'loss', loss, 1);
  expectShape(k, 'dlogits', dlogits, [B, K_cls]);
  expectShape(k, 'losses', losses, [B]);
  for (const input of [logits, labelTensor, weights]) {
    expectDistinct(k, { input, loss, dlogits, losses });
  }
  await gpu.dispatch(crossEntropyKernel, {
    tensors: [logits, labelTensor, weights, loss, dlogits, losses],
    params: { B, K_cls, eps: smoothing },
    grid: [1],
    shapes: `B=${B} K_cls=${K_cls}${smoothing ? ` eps=${smoothing}` : ''}`,
  });
}

/** `gpu --check`'s case: [33, 7] logits of +-20, row `ignored` ignored, class weights in [1, 2), label smoothing eps. */
function ceCheck(eps: number, seed: number, ignored: number): Op['checks'][number] {
  return {
    name: `cross-entropy weighted${eps ? `, label smoothing ${eps}` : ''}, loss+dlogits [33, 7]`,
    tol: TOL.crossEntropy,
    async run(gpu, input) {
      const [B, K] = [33, 7];
      const zs = input(B * K, seed).map((v) => v * 20);
      const labels = Array.from({ length: B }, (_, b) => (b === ignored ? -1 : (b * 3) % K));
      const ws = Float32Array.from(input(K, seed + 1), (v) => 1 + Math.abs(v));
      const [loss, dlogits, losses] = [gpu.empty([1]), gpu.empty([B, K]), gpu.empty([B])];
      for (const t of [loss, dlogits, losses]) gpu.poison(t);
      await crossEntropyForwardBackward(gpu, gpu.upload(zs, [B, K]), labels, gpu.upload(ws), loss, dlogits, losses, eps);
      const f = ref.crossEntropyForward(zs, labels, ws, B, K, eps);
      return [
        [await gpu.read(loss), [f.loss]],
        [await gpu.read(losses), f.losses],
        [await gpu.read(dlogits), ref.crossEntropyBackward(zs, labels, ws, B, K, eps)],
      ];
    },
  };
}

/** The op table's record (ops/index.ts): kernels, wrappers, and `emofuse gpu --check`'s cases. */
export const crossEntropyOp: Op = {
  name: 'cross-entropy',
  kernels: [crossEntropyKernel],
  wrappers: { crossEntropyForwardBackward, crossEntropyLabels },
  checks: [ceCheck(0, 70, 5), ceCheck(0.1, 72, 9)],
};
