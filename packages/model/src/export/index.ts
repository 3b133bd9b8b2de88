// Using a trained model outside emofuse: the ONNX export of the fusion forward and its check against our forward.

import { existsSync } from 'node:fs';
import type { InputNorm } from '../fusion/input-norm.ts';
import { readCheckpointMeta, readInputNorm, readSafetensors, type CheckpointMeta } from '../train/checkpoint.ts';
import { checkpointParams, ExportError, fusionToOnnx, type NamedTensor } from './fusion-onnx.ts';

export * from './fusion-onnx.ts';
export * from './validate.ts';
export { OnnxGraph } from '../onnx/graph.ts';

/** A checkpoint's metadata and parameters, or an ExportError saying what the file is instead. */
export function readCheckpointForExport(path: string): { meta: CheckpointMeta; params: Map<string, NamedTensor>; norm: InputNorm | null } {
  if (!existsSync(path)) throw new ExportError(`checkpoint ${path} does not exist`);
  let tensors: Map<string, NamedTensor>;
  let metadata: Record<string, string>;
  try {
    ({ tensors, metadata } = readSafetensors(path));
  } catch (err) {
    throw new ExportError(`${path} is not a safetensors checkpoint written by 'emofuse train': ${(err as Error).message}`);
  }
  let meta: CheckpointMeta;
  try {
    meta = readCheckpointMeta(metadata, path);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  if (meta.format !== 1 || !meta.config || !Array.isArray(meta.classNames)) {
    throw new ExportError(`${path}: emofuse checkpoint format ${String(meta.format)} is not one this emofuse reads (format 1)`);
  }
  let norm: InputNorm | null;
  try {
    norm = readInputNorm(tensors, path);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  return { meta, params: checkpointParams(tensors), norm };
}

/** The ONNX bytes of a checkpoint file. */
export async function exportCheckpointToOnnx(path: string, producerVersion?: string): Promise<{ onnx: Uint8Array; meta: CheckpointMeta }> {
  const { meta, params, norm } = readCheckpointForExport(path);
  return { onnx: await fusionToOnnx(meta, params, { norm, producerVersion }), meta };
}
