// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length, a JSON header { name: { dtype, shape, data_offsets }, "__metadata__": { string: string } }, then the raw
// little-endian tensor bytes. Written here in ~60 lines because no maintained npm package writes safetensors
// (the registry list in .library has none). Every tensor is F32: parameters `param.<name>`, AdamW moments
// `adam.m.<name>` / `adam.v.<name>`; the metadata key `emofuse` holds JSON: config, class names, step, metrics,
// training state. Writes go to a temp file renamed into place, so a killed run never leaves half a checkpoint.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
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
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the spec allows trailing spaces; keeps the data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const t of tensors.values()) {
      const le = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength); // x86/ARM hosts are little-endian
      writeSync(fd, le);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readSafetensors(path: string): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  const buf = readFileSync(path);
  if (buf.length < 8) throw new Error(`${path}: too short to be a safetensors file`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`${path}: header length ${n} runs past the end of the file (truncated?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: header is not JSON: ${(err as Error).message}`);
  }
  const base = 8 + n;
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const h = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (h.dtype !== 'F32') throw new Error(`${path}: tensor '${name}' is ${h.dtype}; emofuse checkpoints hold F32 only`);
    const [s, e] = h.data_offsets;
    if (base + e > buf.length) throw new Error(`${path}: tensor '${name}' runs past the end of the file (truncated?)`);
    const data = new Float32Array((e - s) / 4);
    Buffer.from(data.buffer).set(buf.subarray(base + s, base + e));
    tensors.set(name, { shape: h.shape, data });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string> | undefined) ?? {} };
}

export function readCheckpointMeta(metadata: Record<string, string>, path: string): CheckpointMeta {
  if (!metadata.emofuse) throw new Error(`${path}: not an emofuse checkpoint (no 'emofuse' metadata)`);
  return JSON.parse(metadata.emofuse) as CheckpointMeta;
}
