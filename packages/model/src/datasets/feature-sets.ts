// Two FeatureSets that need no feature cache: a generated bimodal task (`syntheticBimodal`, for tests and quick
// runs) and a small JSON arrays file (`readArraysFile`, features computed elsewhere).

import { readFileSync } from 'node:fs';
import { mulberry32 } from '@emofuse/kernels';
import { memoryFeatureSplit, type FeatureSet, type FeatureSplit, type UtteranceFeatures } from '../features.ts';
import { gaussian } from '../random.ts';
import { DataError } from '../errors.ts';

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
  const gauss = gaussian(r);
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
