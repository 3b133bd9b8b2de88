// The half of train/checkpoint.ts that needs no file system (so the browser entry can load a checkpoint the page
// fetched): a checkpoint's bytes -> its F32 tensors, its metadata, and the FusionModel they describe. The format
// is described in checkpoint.ts, which reads and writes the files.

import { decodeSafetensors, SafetensorsError, type DecodedSafetensors } from '../cache/safetensors.ts';
import { sha256Hex } from '../cache/sha256.ts';
import type { Backend } from '../fusion/backend.ts';
import { checkFusionConfig, FUSION_SPECS, FusionConfigError, FusionModel, requiredModalities, type FusionConfig } from '../fusion/model.ts';
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
  /**
   * The file's checksum (checkpointChecksum): written by writeSafetensors, verified by every load. Absent in checkpoints
   * written before checksums (they load with a warning).
   */
  sha256?: string;
}

export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * SHA-256 over parts, in order, as hex. The default is the synchronous one in plain TypeScript (the browser has no
 * other); train/checkpoint.ts passes node:crypto's (about 25x faster).
 */
export type Sha256Parts = (parts: readonly Uint8Array[]) => string;

const jsSha256: Sha256Parts = (parts) => {
  if (parts.length === 1) return sha256Hex(parts[0]!);
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return sha256Hex(all);
};

/** The checksum field while a file is being written: replaced in place by the digest (same length, so nothing moves). */
export const CHECKSUM_PENDING = '?'.repeat(64);

/**
 * The checkpoint's checksum (meta.sha256): SHA-256 of what the file says, not of how it spells it: the `emofuse`
 * metadata without the checksum, and each tensor's name, dtype, shape and offsets (header order) as JSON, then the
 * data section's bytes. So a changed byte anywhere that matters (a weight, a shape, an offset, the config, a class name)
 * changes it, while the writer and every reader compute it from the parsed header by this one function.
 */
export function checkpointChecksum(d: DecodedSafetensors, meta: Record<string, unknown>, hash: Sha256Parts = jsSha256): string {
  const { sha256: _, ...rest } = meta;
  const table = [...d.tensors].map(([name, t]) => [name, t.dtype, t.shape, t.offsets]);
  return hash([new TextEncoder().encode(JSON.stringify([rest, table])), d.dataSection]);
}

/** Paths warned about already (an older checkpoint without a checksum warns once per process). */
const warnedNoChecksum = new Set<string>();

/** What to do about a damaged file: `fix` overrides it (the shipped model's: reinstall). */
export interface CheckpointReadOptions {
  hash?: Sha256Parts;
  fix?: string;
}

const DAMAGED_FIX =
  'download or copy it again, or use another checkpoint of the run (its best.safetensors or last.safetensors; ' +
  "'emofuse train --resume <run>' goes on from the last), or train again";

/**
 * A safetensors file's bytes as F32 tensors and metadata (`path` names it in errors), its checksum verified when its
 * `emofuse` metadata has one (a checkpoint written before checksums loads with one warning per process).
 */
export function decodeCheckpointTensors(
  bytes: Uint8Array,
  path: string,
  o: CheckpointReadOptions = {},
): { tensors: Map<string, CheckpointTensor>; metadata: Record<string, string> } {
  const decoded = decodeSafetensors(bytes, path);
  verifyChecksum(decoded, path, o);
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== 'F32') throw new SafetensorsError(`${path}: tensor '${name}' is ${t.dtype}; emofuse checkpoints hold F32 only`);
    const data = new Float32Array(t.data.byteLength / 4);
    new Uint8Array(data.buffer).set(t.data);
    tensors.set(name, { shape: t.shape, data });
  }
  return { tensors, metadata: decoded.metadata };
}

function verifyChecksum(d: DecodedSafetensors, path: string, o: CheckpointReadOptions): void {
  let meta: unknown;
  try {
    meta = d.metadata.emofuse === undefined ? undefined : JSON.parse(d.metadata.emofuse);
  } catch {
    return; // not JSON: readCheckpointMeta says so
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return;
  const stored = (meta as { sha256?: unknown }).sha256;
  if (stored === undefined) {
    // No checksum is an older checkpoint only if every field is one emofuse wrote (a byte flipped in the name 'sha256'
    // would otherwise turn a checked file into an unchecked one)
    const unknown = Object.keys(meta).find((k) => !META_FIELDS.some(([f]) => f === k));
    if (unknown !== undefined)
      throw new DataError(
        `${path} is damaged: its 'emofuse' metadata has no checksum but a field '${unknown.slice(0, 40)}' emofuse never writes; ` +
          `${o.fix ?? DAMAGED_FIX}`,
      );
    if (!warnedNoChecksum.has(path)) {
      warnedNoChecksum.add(path);
      console.warn(
        `emofuse: warning: ${path} has no checksum (written before emofuse checkpoints carried one): loaded without an ` +
          'integrity check; a checkpoint written from now on carries one',
      );
    }
    return;
  }
  if (typeof stored !== 'string' || checkpointChecksum(d, meta as Record<string, unknown>, o.hash) !== stored) {
    throw new DataError(
      `${path} is damaged: its contents do not match the sha256 checksum written into it (a byte changed since: a copy cut ` +
        `short or altered, a disk or download error); ${o.fix ?? DAMAGED_FIX}`,
    );
  }
}

/** A SafetensorsError (layout, dtype) as the DataError every load gives; anything else as it is. */
export function notACheckpoint(err: unknown, path: string, fix?: string): unknown {
  if (!(err instanceof SafetensorsError)) return err;
  const why = err.message.replace(`${path}: `, '');
  return new DataError(`${path} is not a safetensors checkpoint written by 'emofuse train': ${why}${fix ? `; ${fix}` : ''}`);
}

/** `'s 'emofuse' metadata ...: the checkpoint is damaged or from another emofuse`, the shared tail of metadata errors. */
const metaError = (path: string, what: string) =>
  new DataError(`${path}: its 'emofuse' metadata ${what}: the checkpoint is damaged or not one this emofuse reads`);

export function readCheckpointMeta(metadata: Record<string, string>, path: string): CheckpointMeta {
  if (!metadata.emofuse)
    throw new DataError(`${path}: not an emofuse checkpoint (no 'emofuse' metadata): give a .safetensors written by 'emofuse train'`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.emofuse) as CheckpointMeta;
  } catch (err) {
    throw new DataError(`${path}: its 'emofuse' metadata is not valid JSON (${(err as Error).message}): the checkpoint is damaged`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw metaError(path, 'is not a JSON object');
  for (const [field, ok, want] of META_FIELDS) {
    const v = (meta as unknown as Record<string, unknown>)[field];
    if (!ok(v)) throw metaError(path, `field '${field}' is ${v === undefined ? 'missing' : JSON.stringify(v)?.slice(0, 80)}, not ${want}`);
  }
  const c = meta.config as unknown as Record<string, unknown>;
  if (meta.classNames.length !== c.numClasses) {
    throw new DataError(
      `${path}: ${meta.classNames.length} class names for a model of ${String(c.numClasses)} classes: the checkpoint is damaged`,
    );
  }
  try {
    checkFusionConfig(meta.config);
  } catch (err) {
    if (!(err instanceof FusionConfigError)) throw err;
    throw metaError(path, `field 'config': ${err.message.replace(/^model config: /, '')}`);
  }
  // The linear head pools a missing modality to zeros, so it is the one variant a text-only cache can train.
  if (meta.audioEncoder === NO_AUDIO_ENCODER && requiredModalities(FUSION_SPECS[meta.config.fusion]).audio) {
    throw metaError(
      path,
      `field 'audioEncoder' is '${NO_AUDIO_ENCODER}' (a text-only cache), but its config.fusion '${meta.config.fusion}' reads audio`,
    );
  }
  return meta;
}

/** The audio encoder of a text-only feature cache (cache/feature-cache.ts NO_AUDIO.id). */
const NO_AUDIO_ENCODER = 'none';

const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isName = (v: unknown) => typeof v === 'string' && v.length > 0;
/** The `emofuse` metadata's fields: name, check, what it must be (one table; the config is checkFusionConfig's). */
const META_FIELDS: readonly [keyof CheckpointMeta, (v: unknown) => boolean, string][] = [
  ['format', (v) => v === 1, 'format 1'],
  ['config', isObject, 'an object (the model config)'],
  ['classNames', (v) => Array.isArray(v) && v.length > 0 && v.every(isName) && new Set(v).size === v.length, 'a list of distinct names'],
  ['step', (v) => Number.isSafeInteger(v) && (v as number) >= 0, 'an integer >= 0'],
  ['textEncoder', isName, 'an encoder id'],
  ['audioEncoder', isName, 'an encoder id'],
  ['metrics', (v) => v === undefined || isObject(v), 'an object'],
  ['train', (v) => v === undefined || isObject(v), 'an object'],
  ['labelMaps', (v) => v === undefined || Array.isArray(v), 'a list'],
  ['sha256', (v) => v === undefined || (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)), '64 hex digits'],
];

/** Index of the first NaN or infinite value, or -1. */
function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** The config fields whose value is `size` (to name the field a mismatched dimension comes from). */
function fieldsOfSize(c: FusionConfig, size: number): string {
  const keys = Object.entries(c).filter(([k, v]) => v === size && k !== 'seed' && k !== 'layers');
  return keys.length ? ` (config.${keys.map(([k]) => k).join(' / config.')} = ${size})` : '';
}

/**
 * Metadata against tensors: the one check every load goes through (loadCheckpointBytes; export via loadCheckpoint).
 * The model the config describes must find each of its parameters with exactly its shape (a transposed or flattened
 * one with the right count is refused), AdamW moments for all parameters or none, input statistics for all of its
 * inputs or none, every value finite, and no tensor the model does not have.
 */
export function checkCheckpointTensors(
  model: FusionModel,
  meta: CheckpointMeta,
  tensors: ReadonlyMap<string, CheckpointTensor>,
  path: string,
): void {
  const c = meta.config;
  const cfg = `its metadata (config.fusion '${c.fusion}', width ${c.width}, textDim ${c.textDim}, audioDim ${c.audioDim})`;
  const known = new Set<string>();
  let moments = 0;
  for (const p of model.params) {
    for (const name of [`param.${p.name}`, `adam.m.${p.name}`, `adam.v.${p.name}`]) {
      known.add(name);
      const t = tensors.get(name);
      if (!t) {
        if (name.startsWith('param.'))
          throw new DataError(
            `${path}: no tensor '${name}', which ${cfg} needs: metadata and tensors disagree (damaged, or another version)`,
          );
        continue;
      }
      if (name.startsWith('adam.')) moments++;
      const at = p.shape.findIndex((d, i) => t.shape[i] !== d);
      if (t.shape.length !== p.shape.length || at >= 0) {
        throw new DataError(
          `${path}: tensor '${name}' is [${t.shape.join(', ')}], ${cfg} needs [${p.shape.join(', ')}]` +
            `${at >= 0 ? fieldsOfSize(c, p.shape[at]!) : ''}: metadata and tensors disagree (damaged, or transposed/reshaped ` +
            "by another tool): use the file 'emofuse train' wrote",
        );
      }
      const bad = firstNonFinite(t.data);
      if (bad >= 0) {
        const kind = name.startsWith('param.') ? 'parameter' : `AdamW moment ${name[5]} of`;
        throw new DataError(
          `${path}: ${kind} '${p.name}' holds ${t.data[bad]} at element ${bad}: the checkpoint is damaged or its training diverged; ` +
            `use another checkpoint (e.g. an earlier best.safetensors) or train again (a lower ${flagOf('lr')} if it diverged)`,
        );
      }
    }
  }
  if (moments !== 0 && moments !== 2 * model.params.length)
    throw new DataError(`${path}: AdamW moments for some parameters but not all: the checkpoint is damaged; ${DAMAGED_FIX}`);
  const s = model.spec;
  const wantNorm = INPUT_NORM_NAMES.filter((n) => (n === 'text' ? s.text : n === 'audio' ? s.audio : model.pooledNormWidth > 0));
  for (const n of INPUT_NORM_NAMES) for (const x of ['mean', 'std']) known.add(`norm.${n}.${x}`);
  const extra = [...tensors.keys()].filter(
    (n) => !known.has(n) || (n.startsWith('norm.') && !wantNorm.some((w) => n.startsWith(`norm.${w}.`))),
  );
  if (extra.length)
    throw new DataError(
      `${path}: tensor '${extra[0]}'${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} is not part of the model ${cfg} ` +
        'describes: metadata and tensors disagree (damaged, or another version)',
    );
  // all of the model's input statistics or none (a model may read its inputs as they are; never half standardized)
  const has = wantNorm.filter((n) => tensors.has(`norm.${n}.mean`) || tensors.has(`norm.${n}.std`));
  if (has.length > 0 && has.length !== wantNorm.length) {
    const lacking = wantNorm.filter((n) => !has.includes(n));
    throw new DataError(
      `${path}: no input standardization 'norm.${lacking[0]}.*' beside 'norm.${has[0]}.*': ${cfg} needs all or none ` +
        'of them: metadata and tensors disagree (damaged, or another version)',
    );
  }
}

/**
 * How far a config's lower bound on the parameter count may exceed what the file holds before the model is built:
 * a contradiction within it is named tensor by tensor (checkCheckpointTensors), one beyond it refused unbuilt. So a
 * load allocates at most about ROOM x the file's parameters (x 5: values, gradients, two moments, initial values).
 */
const ROOM = 8;
const SLACK = 1 << 16;

/** The longest text a config may declare (tokens; a batch allocates maxTextLen x textDim per utterance). */
const MAX_TEXT_LEN = 1 << 16;

/**
 * The model `meta.config` describes, on `backend`, checked against the file's tensors (checkCheckpointTensors). Its
 * size is checked first, so a config that contradicts the tensors is never allocated: each width and length at most
 * the number of parameter values the file holds, and the big matrices the config implies (stems, attention and
 * feed-forward blocks, a lower bound of the model's parameter count) within ROOM times that count.
 */
export function checkedModel(
  backend: Backend,
  meta: CheckpointMeta,
  tensors: ReadonlyMap<string, CheckpointTensor>,
  path: string,
): FusionModel {
  const c = meta.config;
  const s = FUSION_SPECS[c.fusion];
  let have = 0;
  for (const [name, t] of tensors) if (name.startsWith('param.')) have += t.data.length;
  const C = c.width;
  const F = c.ffnMult * C;
  const stems = s.head !== 'linear';
  const block = 4 * C * C + 2 * C * F;
  const atLeast =
    (stems && s.text ? c.textDim * C : 0) +
    (stems && s.audio ? c.maxAudioLen * C : 0) +
    (s.cross ? 2 * block : 0) +
    (s.self ? c.layers * block : 0) +
    c.numClasses;
  const dims = { textDim: c.textDim, audioDim: c.audioDim, width: C, 'width x ffnMult': F, numClasses: c.numClasses, layers: c.layers };
  const tooBig = Object.entries(dims).find(([, v]) => v > have) ?? (c.maxTextLen > MAX_TEXT_LEN ? ['maxTextLen', c.maxTextLen] : null);
  if (tooBig || atLeast > ROOM * have + SLACK) {
    throw metaError(
      path,
      `field 'config' describes a model of ${tooBig ? `config.${tooBig[0]} ${tooBig[1]}` : `at least ${atLeast} parameters`}, but ` +
        `the file holds ${have} parameter values: metadata and tensors disagree`,
    );
  }
  const model = FusionModel.create(backend, c);
  checkCheckpointTensors(model, meta, tensors, path);
  return model;
}

/**
 * A model (with its optimizer state and step) from a checkpoint's bytes, on the given backend; `path` names it in
 * errors. Everything is checked first: the safetensors layout, the checksum, the metadata, the tensors against it.
 */
export function loadCheckpointBytes(
  backend: Backend,
  bytes: Uint8Array,
  path: string,
  o: CheckpointReadOptions = {},
): { model: FusionModel; meta: CheckpointMeta } {
  let read: ReturnType<typeof decodeCheckpointTensors>;
  try {
    read = decodeCheckpointTensors(bytes, path, o);
  } catch (err) {
    throw notACheckpoint(err, path, o.fix);
  }
  const { tensors, metadata } = read;
  const meta = readCheckpointMeta(metadata, path);
  const model = checkedModel(backend, meta, tensors, path);
  const state = new Map<string, { value: Float32Array; m?: Float32Array; v?: Float32Array }>();
  for (const p of model.params) {
    const get = (name: string) => tensors.get(name)?.data;
    state.set(p.name, { value: get(`param.${p.name}`)!, m: get(`adam.m.${p.name}`), v: get(`adam.v.${p.name}`) });
  }
  model.loadState(state, meta.step);
  try {
    model.setInputNorm(readInputNorm(tensors, path));
  } catch (err) {
    throw new DataError(`${path}: ${(err as Error).message.replace(`${path}: `, '')}`);
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
