// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets }, "__metadata__": { string: string } }, then the raw
// little-endian tensor bytes (the codec is cache/safetensors.ts; no maintained npm package writes the format).
// Every tensor is F32: parameters `param.<name>`, AdamW moments
// `adam.m.<name>` / `adam.v.<name>`; the metadata key `emofuse` holds JSON: config, class names, step, metrics,
// training state. Writes go to a temp file renamed into place, so a killed run never leaves half a checkpoint.

import { readFileSync } from 'node:fs';
import { bytesOf, decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeTensor } from '../cache/safetensors.ts';
import { writeFileAtomic } from '../io.ts';
import type { FusionConfig } from '../fusion/model.ts';

export interface CheckpointMeta {
  format: 1;
  config: FusionConfig;
  classNames: string[];
  /** AdamW steps taken. */
  step: number;
  textEncoder: string;
  audioEncoder: string;
  /** Latest dev metrics and whatever else the trainer wants back on resume. */
  metrics: Record<string, unknown>;
  train: Record<string, unknown>;
}

export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

export function writeSafetensors(path: string, tensors: ReadonlyMap<string, CheckpointTensor>, metadata: Record<string, string>): void {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of tensors) out[name] = { dtype: 'F32', shape: t.shape, data: bytesOf(t.data) };
  writeFileAtomic(path, encodeSafetensors(out, metadata));
}

export function readSafetensors(path: string): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  const decoded = decodeSafetensors(readFileSync(path), path);
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== 'F32') throw new SafetensorsError(`${path}: tensor '${name}' is ${t.dtype}; emofuse checkpoints hold F32 only`);
    const data = new Float32Array(t.data.byteLength / 4);
    new Uint8Array(data.buffer).set(t.data);
    tensors.set(name, { shape: t.shape, data });
  }
  return { tensors, metadata: decoded.metadata };
}

export function readCheckpointMeta(metadata: Record<string, string>, path: string): CheckpointMeta {
  if (!metadata.emofuse) throw new Error(`${path}: not an emofuse checkpoint (no 'emofuse' metadata)`);
  return JSON.parse(metadata.emofuse) as CheckpointMeta;
}
