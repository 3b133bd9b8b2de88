// The half of train/checkpoint.ts that needs no file system (so the browser entry can load a checkpoint the page
// fetched): a checkpoint's bytes -> its F32 tensors, its metadata, and the FusionModel they describe. The format
// is described in checkpoint.ts, which reads and writes the files.

import { decodeSafetensors, SafetensorsError } from '../cache/safetensors.ts';
import type { Backend } from '../fusion/backend.ts';
import { FusionModel, type FusionConfig } from '../fusion/model.ts';
import { INPUT_NORM_NAMES, type InputNorm } from '../fusion/input-norm.ts';
import { DataError } from '../errors.ts';
import { flagOf } from './settings.ts';
import type { CorpusLabelMapReport } from '../datasets/label-map.ts';

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
  /**
   * The label map the training labels were read through (--label-map), one report per source corpus: where each label
   * went and its utterances per split. Eval reads features through the same map (`report.labelMap`).
   */
  labelMaps?: CorpusLabelMapReport[];
}

export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

/** A safetensors file's bytes as F32 tensors and metadata (`path` names it in errors). */
export function decodeCheckpointTensors(
  bytes: Uint8Array,
  path: string,
): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  const decoded = decodeSafetensors(bytes, path);
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
  if (!metadata.emofuse)
    throw new DataError(`${path}: not an emofuse checkpoint (no 'emofuse' metadata): give a .safetensors written by 'emofuse train'`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.emofuse) as CheckpointMeta;
  } catch (err) {
    throw new DataError(`${path}: its 'emofuse' metadata is not valid JSON (${(err as Error).message}): the checkpoint is damaged`);
  }
  const c = meta?.config as unknown as Record<string, unknown> | undefined;
  if (
    typeof meta !== 'object' ||
    meta === null ||
    typeof c !== 'object' ||
    c === null ||
    !Array.isArray(meta.classNames) ||
    !Number.isInteger(meta.step)
  ) {
    throw new DataError(`${path}: its 'emofuse' metadata lacks the model config, class names or step: not a checkpoint this emofuse reads`);
  }
  if (meta.classNames.length !== c.numClasses) {
    throw new DataError(
      `${path}: ${meta.classNames.length} class names for a model of ${String(c.numClasses)} classes: the checkpoint is damaged`,
    );
  }
  return meta;
}

/** Index of the first NaN or infinite value, or -1. */
function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** A model (with its optimizer state and step) from a checkpoint's bytes, on the given backend; `path` names it in errors. */
export function loadCheckpointBytes(backend: Backend, bytes: Uint8Array, path: string): { model: FusionModel; meta: CheckpointMeta } {
  let read: ReturnType<typeof decodeCheckpointTensors>;
  try {
    read = decodeCheckpointTensors(bytes, path);
  } catch (err) {
    if (!(err instanceof SafetensorsError)) throw err;
    throw new DataError(
      `${err.message.startsWith(path) ? '' : `${path}: `}${err.message} (not a complete checkpoint: give a .safetensors written ` +
        `by 'emofuse train')`,
    );
  }
  const { tensors, metadata } = read;
  const meta = readCheckpointMeta(metadata, path);
  const model = FusionModel.create(backend, meta.config);
  const state = new Map<string, { value: Float32Array; m?: Float32Array; v?: Float32Array }>();
  for (const p of model.params) {
    const value = tensors.get(`param.${p.name}`)?.data;
    if (!value) throw new DataError(`${path}: no tensor 'param.${p.name}' (a checkpoint of another model version?)`);
    for (const [kind, t] of [
      ['parameter', value],
      ['AdamW moment m of', tensors.get(`adam.m.${p.name}`)?.data],
      ['AdamW moment v of', tensors.get(`adam.v.${p.name}`)?.data],
    ] as const) {
      const bad = t ? firstNonFinite(t) : -1;
      if (bad >= 0) {
        throw new DataError(
          `${path}: ${kind} '${p.name}' holds ${t![bad]} at element ${bad}: the checkpoint is damaged or its training diverged; ` +
            `use another checkpoint (e.g. an earlier best.safetensors) or train again (a lower ${flagOf('lr')} if it diverged)`,
        );
      }
    }
    state.set(p.name, { value, m: tensors.get(`adam.m.${p.name}`)?.data, v: tensors.get(`adam.v.${p.name}`)?.data });
  }
  model.loadState(state, meta.step);
  try {
    model.setInputNorm(readInputNorm(tensors, path));
  } catch (err) {
    throw new DataError(`${path}: ${(err as Error).message}`);
  }
  return { model, meta };
}

/** The `norm.*` tensors of a checkpoint (null when it has none: the model then reads its inputs as they are). */
export function readInputNorm(tensors: ReadonlyMap<string, CheckpointTensor>, path: string): InputNorm | null {
  const norm: InputNorm = {};
  for (const name of INPUT_NORM_NAMES) {
    const mean = tensors.get(`norm.${name}.mean`)?.data;
    const std = tensors.get(`norm.${name}.std`)?.data;
    if (!mean && !std) continue;
    if (!mean || !std || mean.length !== std.length)
      throw new DataError(`${path}: 'norm.${name}.mean' and 'norm.${name}.std' must both be there, with one value per input dimension`);
    norm[name] = { mean, std };
  }
  return Object.keys(norm).length ? norm : null;
}
