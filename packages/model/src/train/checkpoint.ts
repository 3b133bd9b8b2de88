// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets }, "__metadata__": { string: string } }, then the raw
// little-endian tensor bytes (the codec is cache/safetensors.ts; no maintained npm package writes the format).
// Every tensor is F32: parameters `param.<name>`, AdamW moments
// `adam.m.<name>` / `adam.v.<name>`, the input standardization `norm.<text|audio|pooled>.<mean|std>` ([dim] each,
// fusion/input-norm.ts; absent when the model reads its inputs as they are); the metadata key `emofuse` holds JSON: config, class names,
// step, metrics, training state. Writes go to a temp file renamed into place, so a killed run never leaves half a checkpoint.
// `saveCheckpoint` / `loadCheckpoint` are the model's side: a FusionModel with its AdamW state and step.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bytesOf, decodeSafetensors, encodeSafetensors, type SafeTensor } from '../cache/safetensors.ts';
import { CpuBackend } from '../fusion/backend-cpu.ts';
import { DEFAULT_MODEL, defaultModelDamagedFix, defaultModelMissing } from '../default-model.ts';
import { writeFileAtomic } from '../io.ts';
import type { Backend } from '../fusion/backend.ts';
import type { FusionModel } from '../fusion/model.ts';
import { INPUT_NORM_NAMES } from '../fusion/input-norm.ts';
import { DataError } from '../errors.ts';
import {
  CHECKSUM_PENDING,
  checkedModel,
  checkpointChecksum,
  decodeCheckpointTensors,
  loadCheckpointBytes,
  notACheckpoint,
  readCheckpointMeta,
  type CheckpointMeta,
  type CheckpointTensor,
  type Sha256Parts,
} from './checkpoint-bytes.ts';

// Reading a checkpoint's bytes needs no file system: that half lives in checkpoint-bytes.ts (the browser entry uses it).
export {
  checkCheckpointTensors,
  checkedModel,
  checkpointChecksum,
  decodeCheckpointTensors,
  loadCheckpointBytes,
  readCheckpointMeta,
  readInputNorm,
  type CheckpointMeta,
  type CheckpointReadOptions,
  type CheckpointTensor,
  type Sha256Parts,
} from './checkpoint-bytes.ts';

/**
 * Writes tensors and metadata as safetensors; when the metadata holds an `emofuse` record (a checkpoint), its
 * `sha256` is set to the file's checksum (checkpointChecksum over the file as written: encoded with a placeholder of
 * the same length, the digest computed from the decoded header, then written over the placeholder).
 */
export function writeSafetensors(path: string, tensors: ReadonlyMap<string, CheckpointTensor>, metadata: Record<string, string>): void {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of tensors) out[name] = { dtype: 'F32', shape: t.shape, data: bytesOf(t.data) };
  if (metadata.emofuse === undefined) {
    writeFileAtomic(path, encodeSafetensors(out, metadata));
    return;
  }
  const { sha256: _, ...meta } = JSON.parse(metadata.emofuse) as Record<string, unknown>;
  const bytes = encodeSafetensors(out, { ...metadata, emofuse: JSON.stringify({ ...meta, sha256: CHECKSUM_PENDING }) });
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).lastIndexOf(CHECKSUM_PENDING);
  const digest = checkpointChecksum(decodeSafetensors(bytes, path), meta, nodeSha256);
  bytes.set(new TextEncoder().encode(digest), at);
  writeFileAtomic(path, bytes);
}

/** node:crypto's SHA-256 over parts (checkpoint-bytes.ts has the browser's). */
export const nodeSha256: Sha256Parts = (parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** The shipped model's fix when its file is damaged (a reinstall), else the general one. */
function fixFor(path: string): string | undefined {
  return resolve(path) === resolve(DEFAULT_MODEL.file) ? defaultModelDamagedFix() : undefined;
}

/** A checkpoint file's tensors and metadata, its checksum verified (as every load does). */
export function readSafetensors(path: string): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  return decodeCheckpointTensors(readFileSync(path), path, { hash: nodeSha256, fix: fixFor(path) });
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

/**
 * A checkpoint file's metadata and tensors, checked as a load checks them (layout, checksum, metadata, tensors against
 * the metadata), for readers that need no model on a backend (the ONNX export): the check's model lives on the CPU.
 */
export function readCheckpoint(path: string): { meta: CheckpointMeta; tensors: Map<string, CheckpointTensor> } {
  checkCheckpointPath(path);
  const fix = fixFor(path);
  let read: ReturnType<typeof decodeCheckpointTensors>;
  try {
    read = decodeCheckpointTensors(readFileSync(path), path, { hash: nodeSha256, fix });
  } catch (err) {
    throw notACheckpoint(err, path, fix);
  }
  const meta = readCheckpointMeta(read.metadata, path);
  checkedModel(new CpuBackend('f32'), meta, read.tensors, path);
  return { meta, tensors: read.tensors };
}

/** A model (with its optimizer state and step) from a checkpoint file, on the given backend. */
export function loadCheckpoint(backend: Backend, path: string): { model: FusionModel; meta: CheckpointMeta } {
  checkCheckpointPath(path);
  return loadCheckpointBytes(backend, readFileSync(path), path, { hash: nodeSha256, fix: fixFor(path) });
}

/** Refuses a path that is not a checkpoint file: missing (the shipped model's: reinstall), or a folder (name its files). */
export function checkCheckpointPath(path: string): void {
  if (!existsSync(path)) {
    if (fixFor(path)) throw new DataError(defaultModelMissing());
    throw new DataError(`checkpoint ${path} does not exist`);
  }
  if (statSync(path).isDirectory()) {
    const inside = ['best.safetensors', 'last.safetensors'].filter((f) => existsSync(join(path, f)));
    throw new DataError(
      `checkpoint ${path} is a folder, not a checkpoint file: pass ${join(path, inside[0] ?? 'best.safetensors')}` +
        `${inside.length ? ` (the run's ${inside.join(' or ')})` : ' (the .safetensors file inside it)'}`,
    );
  }
}
