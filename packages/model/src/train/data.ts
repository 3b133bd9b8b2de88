// What training needs from a FeatureSet (features.ts): input checks that stop bad data before any step, class
// weights, seeded epoch orders, and padding to the model's fixed shapes. Plus two ways to get a FeatureSet without
// the feature cache: a generated bimodal task (`syntheticBimodal`) and a small JSON arrays file (`readArraysFile`).

import { readFileSync } from 'node:fs';
import { memoryFeatureSplit, type FeatureBatch, type FeatureSet, type FeatureSplit, type UtteranceFeatures } from '../features.ts';
import type { StepInputs } from '../fusion/model.ts';
import { mulberry32 } from '@emofuse/kernels';

/** A problem with the training data, phrased for the user (file, field, fix). */
export class DataError extends Error {
  override name = 'DataError';
}

/**
 * Scans every utterance of the named splits: non-empty, labels in range, finite features, widths as declared, and
 * at least one token of each modality the model reads (`needs`; a text-only cache can train the 'text' variant).
 */
export function validateFeatureSet(
  fs: FeatureSet, splits: readonly string[], source: string, needs: { text: boolean; audio: boolean } = { text: true, audio: true },
): void {
  const K = fs.classNames.length;
  if (K < 2) throw new DataError(`${source}: needs at least 2 class names, got ${K} (${fs.classNames.join(', ') || 'none'})`);
  for (const [name, dim] of [['textDim', fs.textDim], ['audioDim', fs.audioDim]] as const) {
    if (!Number.isInteger(dim) || dim < 1) throw new DataError(`${source}: ${name} must be a positive integer, got ${dim}`);
  }
  for (const s of splits) {
    const split = fs.splits[s];
    if (!split) throw new DataError(`${source}: has no split '${s}' (it has: ${Object.keys(fs.splits).join(', ') || 'none'}); pass another with --train-split / --dev-split / --split`);
    if (split.size === 0) throw new DataError(`${source}: split '${s}' is empty; nothing to train or evaluate on`);
    for (let i = 0; i < split.size; i += 64) {
      const idx = Array.from({ length: Math.min(64, split.size - i) }, (_, j) => i + j);
      const b = split.batch(idx);
      b.ids.forEach((id, r) => {
        const y = b.labels[r]!;
        if (!(Number.isInteger(y) && y >= 0 && y < K)) {
          throw new DataError(`${source}: split '${s}', utterance '${id}': label ${y} is not a class index in [0, ${K}) (classes: ${fs.classNames.join(', ')})`);
        }
        if (needs.text && !b.textMask.subarray(r * b.Tt, (r + 1) * b.Tt).some((m) => m > 0)) {
          throw new DataError(`${source}: split '${s}', utterance '${id}': no text tokens (only --fusion audio can use it)`);
        }
        if (needs.audio && !b.audioMask.subarray(r * b.Ta, (r + 1) * b.Ta).some((m) => m > 0)) {
          throw new DataError(`${source}: split '${s}', utterance '${id}': no audio tokens (a text-only cache trains only --fusion text)`);
        }
      });
      if (b.text.length !== idx.length * b.Tt * fs.textDim) throw new DataError(`${source}: split '${s}': text features are not ${fs.textDim} wide (textDim)`);
      if (b.audio.length !== idx.length * b.Ta * fs.audioDim) throw new DataError(`${source}: split '${s}': audio features are not ${fs.audioDim} wide (audioDim)`);
      for (const [field, arr, T, C] of [['text', b.text, b.Tt, fs.textDim], ['audio', b.audio, b.Ta, fs.audioDim]] as const) {
        for (let k = 0; k < arr.length; k++) {
          if (!Number.isFinite(arr[k]!)) {
            const r = Math.floor(k / (T * C));
            throw new DataError(`${source}: split '${s}', utterance '${b.ids[r]}': ${field} feature [token ${Math.floor(k / C) % T}, channel ${k % C}] is ${arr[k]}; re-extract it or drop the utterance`);
          }
        }
      }
    }
  }
}

/** Longest text and audio sequences over the given splits. */
export function maxLengths(fs: FeatureSet, splits: readonly string[]): { text: number; audio: number } {
  let text = 1;
  let audio = 1;
  for (const s of splits) {
    const split = fs.splits[s]!;
    for (let i = 0; i < split.size; i += 64) {
      const b = split.batch(Array.from({ length: Math.min(64, split.size - i) }, (_, j) => i + j));
      text = Math.max(text, b.Tt);
      audio = Math.max(audio, b.Ta);
    }
  }
  return { text, audio };
}

/** Inverse class frequency, scaled so a balanced set gets 1 (scikit-learn's 'balanced'): n / (K * n_k); 0 for absent classes. */
export function inverseFrequencyWeights(labels: ArrayLike<number>, K: number): number[] {
  const counts = new Array<number>(K).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]! += 1;
  return counts.map((c) => (c ? labels.length / (K * c) : 0));
}

/** The order of epoch `epoch` (Fisher-Yates from a seed derived from (seed, epoch)): a resumed run gets the same order. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const r = mulberry32((Math.imul(seed + 1, 0x27d4eb2d) ^ Math.imul(epoch + 1, 0x165667b1)) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * One FeatureBatch padded to the model's fixed shapes [B, Tt, Ct], [B, Ta, Ca] (longer sequences truncated to
 * Tt / Ta; rows beyond the batch get label -1 and empty masks, which the loss and metrics ignore).
 */
export function padBatch(fb: FeatureBatch, B: number, Tt: number, Ta: number, textDim: number, audioDim: number): StepInputs {
  const n = fb.ids.length;
  if (n > B) throw new Error(`padBatch: ${n} utterances do not fit a batch of ${B}`);
  const text = new Float32Array(B * Tt * textDim);
  const textMask = new Float32Array(B * Tt);
  const audio = new Float32Array(B * Ta * audioDim);
  const audioMask = new Float32Array(B * Ta);
  const labels = new Array<number>(B).fill(-1);
  for (let b = 0; b < n; b++) {
    labels[b] = fb.labels[b]!;
    const lt = Math.min(Tt, fb.Tt);
    const la = Math.min(Ta, fb.Ta);
    text.set(fb.text.subarray(b * fb.Tt * textDim, (b * fb.Tt + lt) * textDim), b * Tt * textDim);
    textMask.set(fb.textMask.subarray(b * fb.Tt, b * fb.Tt + lt), b * Tt);
    audio.set(fb.audio.subarray(b * fb.Ta * audioDim, (b * fb.Ta + la) * audioDim), b * Ta * audioDim);
    audioMask.set(fb.audioMask.subarray(b * fb.Ta, b * fb.Ta + la), b * Ta);
  }
  return { text, textMask, audio, audioMask, labels };
}

// -------------------------------------------------------------------------------------------- generated data

export interface SyntheticOptions {
  /** Utterances per split. */
  train?: number;
  dev?: number;
  test?: number;
  textDim?: number;
  audioDim?: number;
  maxTextLen?: number;
  maxAudioLen?: number;
  /** Cue strength relative to the unit-variance noise. */
  signal?: number;
  seed?: number;
}

/**
 * A bimodal task where the label needs both modalities: 4 classes = text cue (2) x audio cue (2), so either
 * modality alone caps at 50% accuracy. Text: Gaussian tokens of random length, one token at a random position
 * carries +u or -u (the text cue). Audio: Gaussian frames of random length shifted by +v or -v along a direction
 * v on the frames of a random stretch (the audio cue: a high or low pitch over part of the utterance). Lengths and
 * positions are drawn independently of the label.
 */
export function syntheticBimodal(o: SyntheticOptions = {}): FeatureSet {
  const textDim = o.textDim ?? 16;
  const audioDim = o.audioDim ?? 16;
  const Tt = o.maxTextLen ?? 8;
  const Ta = o.maxAudioLen ?? 12;
  const signal = o.signal ?? 2;
  const seed = o.seed ?? 1;
  const r = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const unit = (n: number) => {
    const v = Array.from({ length: n }, gauss);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const u = unit(textDim);
  const v = unit(audioDim);
  const make = (split: string, count: number): UtteranceFeatures[] =>
    Array.from({ length: count }, (_, i) => {
      const textCue = Math.floor(r() * 2);
      const audioCue = Math.floor(r() * 2);
      const textLen = 2 + Math.floor(r() * (Tt - 1));
      const audioLen = 3 + Math.floor(r() * (Ta - 2));
      const text = Float32Array.from({ length: textLen * textDim }, gauss);
      const at = Math.floor(r() * textLen);
      for (let c = 0; c < textDim; c++) text[at * textDim + c] += (textCue ? 1 : -1) * signal * 2 * u[c]!;
      const audio = Float32Array.from({ length: audioLen * audioDim }, gauss);
      const from = Math.floor(r() * Math.ceil(audioLen / 2));
      const to = from + Math.ceil(audioLen / 2);
      for (let t = from; t < to; t++) {
        for (let c = 0; c < audioDim; c++) audio[t * audioDim + c] += (audioCue ? 1 : -1) * signal * v[c]!;
      }
      return { id: `${split}-${i}`, label: textCue * 2 + audioCue, text, textLen, audio, audioLen };
    });
  const splits: Record<string, FeatureSplit> = {};
  for (const [name, n] of [['train', o.train ?? 256], ['dev', o.dev ?? 64], ['test', o.test ?? 64]] as const) {
    splits[name] = memoryFeatureSplit(make(name, n), textDim, audioDim);
  }
  return {
    classNames: ['neg-text/low-pitch', 'neg-text/high-pitch', 'pos-text/low-pitch', 'pos-text/high-pitch'],
    textDim,
    audioDim,
    textEncoder: 'synthetic',
    audioEncoder: 'synthetic',
    splits,
  };
}

/**
 * A FeatureSet from a JSON arrays file:
 *   { "classNames": [...], "textDim": Ct, "audioDim": Ca,
 *     "splits": { "train": [ { "id": "u1", "label": "joy" | 2, "text": [[Ct numbers], ...], "audio": [[Ca numbers], ...] }, ... ], "dev": [...] } }
 */
export function readArraysFile(path: string): FeatureSet {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DataError(`${path}: cannot read it as JSON: ${(err as Error).message}`);
  }
  const o = raw as { classNames?: unknown; textDim?: unknown; audioDim?: unknown; splits?: unknown };
  if (!Array.isArray(o.classNames) || !o.classNames.every((c) => typeof c === 'string')) throw new DataError(`${path}: "classNames" must be an array of strings`);
  const classNames = o.classNames as string[];
  const textDim = o.textDim as number;
  const audioDim = o.audioDim as number;
  for (const [k, d] of [['textDim', textDim], ['audioDim', audioDim]] as const) {
    if (!Number.isInteger(d) || d < 1) throw new DataError(`${path}: "${k}" must be a positive integer, got ${JSON.stringify(d)}`);
  }
  if (!o.splits || typeof o.splits !== 'object') throw new DataError(`${path}: "splits" must be an object of split name -> utterances`);
  const splits: Record<string, FeatureSplit> = {};
  for (const [name, list] of Object.entries(o.splits as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new DataError(`${path}: splits.${name} must be an array of utterances`);
    const utts = list.map((u: { id?: unknown; label?: unknown; text?: unknown; audio?: unknown }, i): UtteranceFeatures => {
      const where = `${path}: splits.${name}[${i}]${typeof u.id === 'string' ? ` (id '${u.id}')` : ''}`;
      let label: number;
      if (typeof u.label === 'string') {
        label = classNames.indexOf(u.label);
        if (label < 0) throw new DataError(`${where}: label '${u.label}' is not one of classNames (${classNames.join(', ')})`);
      } else if (typeof u.label === 'number' && Number.isInteger(u.label) && u.label >= 0 && u.label < classNames.length) {
        label = u.label;
      } else throw new DataError(`${where}: label ${JSON.stringify(u.label)} is neither a class name nor an index in [0, ${classNames.length})`);
      const rows = (field: 'text' | 'audio', dim: number) => {
        const v = u[field];
        if (!Array.isArray(v) || v.length === 0) throw new DataError(`${where}: "${field}" must be a non-empty array of token vectors`);
        const out = new Float32Array(v.length * dim);
        v.forEach((row: unknown, t) => {
          if (!Array.isArray(row) || row.length !== dim) {
            throw new DataError(`${where}: ${field}[${t}] has ${Array.isArray(row) ? row.length : 'no'} values, but ${field === 'text' ? 'textDim' : 'audioDim'} is ${dim}`);
          }
          row.forEach((x: unknown, c) => {
            if (typeof x !== 'number' || !Number.isFinite(x)) throw new DataError(`${where}: ${field}[${t}][${c}] is ${JSON.stringify(x)}, not a finite number`);
            out[t * dim + c] = x;
          });
        });
        return { data: out, len: v.length };
      };
      const text = rows('text', textDim);
      const audio = rows('audio', audioDim);
      return { id: typeof u.id === 'string' ? u.id : `${name}-${i}`, label, text: text.data, textLen: text.len, audio: audio.data, audioLen: audio.len };
    });
    splits[name] = memoryFeatureSplit(utts, textDim, audioDim);
  }
  return { classNames, textDim, audioDim, textEncoder: 'arrays', audioEncoder: 'arrays', splits };
}
