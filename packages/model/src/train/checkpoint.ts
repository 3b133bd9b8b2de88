// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets }, "__metadata__": { string: string } }, then the raw
// little-endian tensor bytes (the codec is cache/safetensors.ts; no maintained npm package writes the format).
// Every tensor is F32: parameters `param.<name>`, AdamW moments
// `adam.m.<name>` / `adam.v.<name>`, the input standardization `norm.<text|audio|pooled>.<mean|std>` ([dim] each,
// fusion/input-norm.ts; absent when the model reads its inputs as they are); the metadata key `emofuse` holds JSON: config, class names,
// step, metrics, training state. Writes go to a temp file renamed into place, so a killed run never leaves half a checkpoint.
// `saveCheckpoint` / `loadCheckpoint` are the model's side: a FusionModel with its AdamW state and step.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { bytesOf, encodeSafetensors, type SafeTensor } from '../cache/safetensors.ts';
import { writeFileAtomic } from '../io.ts';
import type { Backend } from '../fusion/backend.ts';
import type { FusionModel } from '../fusion/model.ts';
import { INPUT_NORM_NAMES } from '../fusion/input-norm.ts';
import { DataError } from '../errors.ts';
import { decodeCheckpointTensors, loadCheckpointBytes, type CheckpointMeta, type CheckpointTensor } from './checkpoint-bytes.ts';

// Reading a checkpoint's bytes needs no file system: that half lives in checkpoint-bytes.ts (the browser entry uses it).
export {
  decodeCheckpointTensors,
  loadCheckpointBytes,
  readCheckpointMeta,
  readInputNorm,
  type CheckpointMeta,
  type CheckpointTensor,
} from './checkpoint-bytes.ts';

export function writeSafetensors(path: string, tensors: ReadonlyMap<string, CheckpointTensor>, metadata: Record<string, string>): void {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of tensors) out[name] = { dtype: 'F32', shape: t.shape, data: bytesOf(t.data) };
  writeFileAtomic(path, encodeSafetensors(out, metadata));
}

export function readSafetensors(path: string): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  return decodeCheckpointTensors(readFileSync(path), path);
}

export async function saveCheckpoint(model: FusionModel, path: string, meta: CheckpointMeta): Promise<void> {
  const st = await model.readState();
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, s] of st) tensors.set(`param.${name}`, { shape: s.shape, data: s.value });
  for (const [name, s] of st) tensors.set(`adam.m.${name}`, { shape: s.shape, data: s.m });
  for (const [name, s] of st) tensors.set(`adam.v.${name}`, { shape: s.shape, data: s.v });
  for (const name of INPUT_NORM_NAMES) {
    const n = model.inputNorm?.[name];
    if (!n) continue;
    tensors.set(`norm.${name}.mean`, { shape: [n.mean.length], data: n.mean });
    tensors.set(`norm.${name}.std`, { shape: [n.std.length], data: n.std });
  }
  writeSafetensors(path, tensors, { emofuse: JSON.stringify(meta), format: 'pt' });
}

/** A model (with its optimizer state and step) from a checkpoint file, on the given backend. */
export function loadCheckpoint(backend: Backend, path: string): { model: FusionModel; meta: CheckpointMeta } {
  if (!existsSync(path)) throw new DataError(`checkpoint ${path} does not exist`);
  if (statSync(path).isDirectory())
    throw new DataError(`checkpoint ${path} is a folder: give the .safetensors file in it (e.g. ${path}/best.safetensors)`);
  return loadCheckpointBytes(backend, readFileSync(path), path);
}
