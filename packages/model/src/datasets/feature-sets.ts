// FeatureSets beside the feature cache: a generated bimodal task (`syntheticBimodal`, for tests and quick runs), a
// small JSON arrays file (`readArraysFile`, features computed elsewhere), and several sets joined into one
// (`joinFeatureSets`: train --features A,B), read through one label map (`mapFeatureSet`).

import { mulberry32 } from '@emofuse/kernels';
import {
  memoryFeatureSplit,
  selectSplit,
  type FeatureBatch,
  type FeatureSet,
  type FeatureSource,
  type FeatureSplit,
  type SpeakerNormReport,
  type UtteranceFeatures,
} from '../features.ts';
import { speakerStandardizedSplit, speakerTokenStats, type SpeakerFallback, type SpeakerStats } from '../fusion/input-norm.ts';
import { gaussian } from '../random.ts';
import { DataError } from '../errors.ts';
import { readUtf8File } from '../text-file.ts';
import { applyLabelMap, type CorpusLabelMapReport, type LabelMap } from './label-map.ts';

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
  for (const [name, n] of [
    ['train', o.train ?? 256],
    ['dev', o.dev ?? 64],
    ['test', o.test ?? 64],
  ] as const) {
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
 *     "splits": { "train": [ { "id": "u1", "label": "joy" | 2, "text": [[Ct numbers], ...], "audio": [[Ca numbers], ...] }, ... ],
 *                 "dev": [...] } }
 */
export function readArraysFile(path: string): FeatureSet {
  let raw: unknown;
  const text = readUtf8File(path, (detail) => new DataError(`${path}: ${detail}`));
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${path}: cannot read it as JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new DataError(`${path}: must be a JSON object { "classNames", "textDim", "audioDim", "splits" }`);
  const o = raw as { classNames?: unknown; textDim?: unknown; audioDim?: unknown; splits?: unknown };
  if (!Array.isArray(o.classNames) || !o.classNames.every((c) => typeof c === 'string'))
    throw new DataError(`${path}: "classNames" must be an array of strings`);
  const classNames = o.classNames as string[];
  const twice = classNames.find((c, i) => classNames.indexOf(c) !== i);
  if (twice !== undefined) throw new DataError(`${path}: "classNames" lists '${twice}' twice: each class once`);
  const textDim = o.textDim as number;
  const audioDim = o.audioDim as number;
  for (const [k, d] of [
    ['textDim', textDim],
    ['audioDim', audioDim],
  ] as const) {
    if (!Number.isInteger(d) || d < 1 || d > MAX_ARRAYS_DIM)
      throw new DataError(`${path}: "${k}" must be a positive integer (at most ${MAX_ARRAYS_DIM}), got ${short(d)}`);
  }
  if (!isObject(o.splits)) throw new DataError(`${path}: "splits" must be an object of split name -> utterances`);
  const splits: Record<string, FeatureSplit> = {};
  const firstSeen = new Map<string, string>();
  for (const [name, list] of Object.entries(o.splits as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new DataError(`${path}: splits.${name} must be an array of utterances`);
    const utts = list.map((u: { id?: unknown; label?: unknown; text?: unknown; audio?: unknown }, i): UtteranceFeatures => {
      if (!isObject(u))
        throw new DataError(`${path}: splits.${name}[${i}] must be an object { "id", "label", "text", "audio" }, got ${short(u)}`);
      const where = `${path}: splits.${name}[${i}]${typeof u.id === 'string' ? ` (id '${cut(u.id)}')` : ''}`;
      const id = typeof u.id === 'string' ? u.id : `${name}-${i}`;
      const before = firstSeen.get(id);
      if (before !== undefined) throw new DataError(`${where}: id '${cut(id)}' is also ${before}'s: each utterance needs its own id`);
      firstSeen.set(id, `splits.${name}[${i}]`);
      let label: number;
      if (typeof u.label === 'string') {
        label = classNames.indexOf(u.label);
        if (label < 0) throw new DataError(`${where}: label '${cut(u.label)}' is not one of classNames (${classNames.join(', ')})`);
      } else if (typeof u.label === 'number' && Number.isInteger(u.label) && u.label >= 0 && u.label < classNames.length) {
        label = u.label;
      } else throw new DataError(`${where}: label ${short(u.label)} is neither a class name nor an index in [0, ${classNames.length})`);
      const rows = (field: 'text' | 'audio', dim: number) => {
        const v = u[field];
        if (!Array.isArray(v) || v.length === 0) throw new DataError(`${where}: "${field}" must be a non-empty array of token vectors`);
        // every row checked before the array is made: its size is then what the file holds, never what a bad dim asks
        v.forEach((row: unknown, t) => {
          if (!Array.isArray(row) || row.length !== dim) {
            throw new DataError(
              `${where}: ${field}[${t}] has ${Array.isArray(row) ? row.length : 'no'} values, but ` +
                `${field === 'text' ? 'textDim' : 'audioDim'} is ${dim}`,
            );
          }
        });
        const out = new Float32Array(v.length * dim);
        v.forEach((row: unknown[], t) => {
          row.forEach((x: unknown, c) => {
            if (typeof x !== 'number' || !Number.isFinite(x))
              throw new DataError(`${where}: ${field}[${t}][${c}] is ${short(x)}, not a finite number`);
            out[t * dim + c] = x;
          });
        });
        return { data: out, len: v.length };
      };
      const text = rows('text', textDim);
      const audio = rows('audio', audioDim);
      return { id, label, text: text.data, textLen: text.len, audio: audio.data, audioLen: audio.len };
    });
    // an own property whatever the name ('__proto__' too), as JSON.parse made it
    Object.defineProperty(splits, name, {
      value: memoryFeatureSplit(utts, textDim, audioDim),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { classNames, textDim, audioDim, textEncoder: 'arrays', audioEncoder: 'arrays', splits };
}

/** Widest token vector an arrays file may declare (encoders give 384 to 1,280). */
export const MAX_ARRAYS_DIM = 65_536;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A string for a message, cut to 80 characters (a file's field, never the whole file). */
const cut = (s: string) => (s.length > 80 ? `${s.slice(0, 77)}...` : s);
/** A value as JSON for a message, cut the same way. */
const short = (x: unknown) => cut(JSON.stringify(x) ?? String(x));

// ------------------------------------------------------------------------------------------ several sets as one

/** The encoder id a source without that modality records (a text-only cache's audio: cache/feature-cache.ts NO_AUDIO). */
const NONE = 'none';

/** Which modalities a feature set holds tokens of: a text-only cache has no audio (encoder 'none'). */
export function sourceModalities(fs: Pick<FeatureSet, 'textEncoder' | 'audioEncoder'>): { text: boolean; audio: boolean } {
  return { text: fs.textEncoder !== NONE, audio: fs.audioEncoder !== NONE };
}

/** A cache's index fields the join compares (absent for synthetic / arrays sets, which have ids and widths only). */
type IndexedSet = FeatureSet & { dir?: string; index?: { text: { id: string; version: string }; audio: { id: string; version: string } } };

/** The corpus name of a set: a cache's dataset name ('meld', 'ravdess'), else `fallback` (its file name). */
export function corpusName(fs: FeatureSet, fallback: string): string {
  return (fs as { index?: { dataset?: { name?: string } } }).index?.dataset?.name ?? fallback;
}

/**
 * Several feature sets as one: the same text encoder (id, version, width) among the sets with text and the same audio
 * encoder among those with audio, refused otherwise naming both sets and the field. A set without a modality (a
 * text-only cache) joins sets that have it: its utterances have no tokens of it. Splits are joined by name; labels
 * index the union of the sets' class names (first appearance order): training refuses sets whose class names differ
 * (`validateFeatureSet`) unless they are read through one label map (`mapFeatureSet`, --label-map). Every utterance
 * remembers its source (`FeatureSplit.corpora`), so eval and ablate report each corpus on its own.
 */
export function joinFeatureSets(sources: readonly FeatureSource[]): FeatureSet {
  if (sources.length === 0) throw new DataError('no feature sets to join');
  const names = sources.map((s) => s.corpus);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined)
    throw new DataError(`two feature sets are both named '${dup}': each source of a joined set needs its own corpus name`);
  const where = (s: FeatureSource) => `'${s.corpus}'${(s.features as IndexedSet).dir ? ` (${(s.features as IndexedSet).dir})` : ''}`;
  const dims = { text: 1, audio: 1 };
  const encoders = { text: NONE, audio: NONE };
  for (const m of ['text', 'audio'] as const) {
    const having = sources.filter((s) => sourceModalities(s.features)[m]);
    const first = having[0];
    if (!first) continue;
    const f = first.features as IndexedSet;
    for (const s of having.slice(1)) {
      const g = s.features as IndexedSet;
      const fields: [string, unknown, unknown][] = [
        [`${m} encoder (${m}.id in index.json)`, f[`${m}Encoder`], g[`${m}Encoder`]],
        [`${m} encoder version (${m}.version in index.json)`, f.index?.[m].version, g.index?.[m].version],
        [`${m} width (${m}.dim in index.json)`, f[`${m}Dim`], g[`${m}Dim`]],
      ];
      for (const [field, a, b] of fields) {
        if (a === undefined || b === undefined || a === b) continue;
        throw new DataError(
          `${where(first)} and ${where(s)} differ in ${field}: '${a}' vs '${b}'; joined caches need the same encoders: extract ` +
            `them with the same --${m}-encoder`,
        );
      }
    }
    dims[m] = f[`${m}Dim`];
    encoders[m] = f[`${m}Encoder`];
  }
  if (encoders.text === NONE && encoders.audio === NONE)
    throw new DataError(`the feature sets ${names.join(', ')} hold neither text nor audio`);
  refuseOverlap(sources, where);
  const classNames: string[] = [];
  for (const s of sources) for (const c of s.features.classNames) if (!classNames.includes(c)) classNames.push(c);
  const splitNames: string[] = [];
  for (const s of sources) for (const n of Object.keys(s.features.splits)) if (!splitNames.includes(n)) splitNames.push(n);
  const splits: Record<string, FeatureSplit> = {};
  for (const name of splitNames) {
    const parts = sources.flatMap((s) => {
      const split = s.features.splits[name];
      if (!split) return [];
      const to = Int32Array.from(s.features.classNames, (c) => classNames.indexOf(c)); // [K_source] -> union index
      return [{ corpus: s.corpus, split, to, has: sourceModalities(s.features), Ct: s.features.textDim, Ca: s.features.audioDim }];
    });
    splits[name] = joinSplits(parts, dims.text, dims.audio);
  }
  return {
    classNames,
    textDim: dims.text,
    audioDim: dims.audio,
    textEncoder: encoders.text,
    audioEncoder: encoders.audio,
    splits,
    sources: [...sources],
  };
}

/**
 * Two sources holding the same utterances (one cache given twice under two paths, or a cache and a subset of the same
 * corpus) would count each of them twice, or put one utterance in train of one and dev of the other: refused, naming
 * both sources and the field (the dataset's fingerprint, else the first shared utterance id of a corpus).
 */
function refuseOverlap(sources: readonly FeatureSource[], where: (s: FeatureSource) => string): void {
  const dataset = (s: FeatureSource) => (s.features as { index?: { dataset?: { name?: string; fingerprint?: string } } }).index?.dataset;
  for (let i = 0; i < sources.length; i++) {
    for (let j = i + 1; j < sources.length; j++) {
      const [a, b] = [dataset(sources[i]!), dataset(sources[j]!)];
      if (!a?.name || a.name !== b?.name) continue;
      const both = `${where(sources[i]!)} and ${where(sources[j]!)}`;
      if (a.fingerprint && a.fingerprint === b.fingerprint)
        throw new DataError(
          `${both} hold the same data (dataset.fingerprint ${a.fingerprint} in index.json): joined, every utterance would ` +
            'count twice; give it once',
        );
      const ids = new Set(Object.values(sources[i]!.features.splits).flatMap((sp) => sp.ids));
      const shared = Object.values(sources[j]!.features.splits)
        .flatMap((sp) => sp.ids)
        .find((id) => ids.has(id));
      if (shared !== undefined)
        throw new DataError(
          `${both} both hold utterance '${shared}' of ${a.name} (splits.*.ids in index.json): join caches of different utterances`,
        );
    }
  }
}

interface JoinPart {
  corpus: string;
  split: FeatureSplit;
  /** [K_part] its class index -> the joined set's. */
  to: Int32Array;
  has: { text: boolean; audio: boolean };
  Ct: number;
  Ca: number;
}

/** The splits of one name, one after another: labels read through each part's `to`, a modality a part lacks left empty. */
function joinSplits(parts: readonly JoinPart[], Ct: number, Ca: number): FeatureSplit {
  const refs = parts.flatMap((p, k) => Array.from({ length: p.split.size }, (_, i) => [k, i] as const));
  // speakers named by corpus (two corpora may both have a speaker '03'); '' where a corpus does not know them
  const speakers = parts.some((p) => p.split.speakers)
    ? refs.map(([k, i]) => {
        const s = parts[k]!.split.speakers?.[i];
        return s ? `${parts[k]!.corpus}:${s}` : '';
      })
    : undefined;
  const relabel = (p: JoinPart, y: number) => (y < 0 ? y : p.to[y]!);
  return {
    size: refs.length,
    ids: refs.map(([k, i]) => parts[k]!.split.ids[i]!),
    labels: Int32Array.from(refs, ([k, i]) => relabel(parts[k]!, parts[k]!.split.labels[i]!)),
    textLens: Int32Array.from(refs, ([k, i]) => parts[k]!.split.textLens[i]!),
    audioLens: Int32Array.from(refs, ([k, i]) => parts[k]!.split.audioLens[i]!),
    corpora: refs.map(([k]) => parts[k]!.corpus),
    ...(speakers ? { speakers } : {}),
    batch(indices, shape) {
      const chosen = indices.map((j) => {
        const r = refs[j];
        if (!r) throw new RangeError(`utterance index ${j} out of range [0, ${refs.length})`);
        return r;
      });
      if (shape && chosen.length > shape.rows) throw new RangeError(`${chosen.length} utterances do not fit a batch of ${shape.rows}`);
      // one sub-batch per part (at the target shape, or unpadded), then its rows copied into place
      const subs = parts.map((p, k) => {
        const rows = chosen.flatMap(([kk, i], pos) => (kk === k ? [[pos, i] as const] : []));
        const b = rows.length
          ? p.split.batch(
              rows.map(([, i]) => i),
              shape && { ...shape, rows: rows.length },
            )
          : undefined;
        return { p, rows, b };
      });
      const B = shape?.rows ?? chosen.length;
      const Tt = shape?.Tt ?? Math.max(1, ...subs.map((s) => (s.b && s.p.has.text ? s.b.Tt : 1)));
      const Ta = shape?.Ta ?? Math.max(1, ...subs.map((s) => (s.b && s.p.has.audio ? s.b.Ta : 1)));
      const out: FeatureBatch = {
        ids: new Array<string>(chosen.length),
        labels: new Int32Array(B).fill(-1),
        Tt,
        Ta,
        text: new Float32Array(B * Tt * Ct),
        textMask: new Float32Array(B * Tt), // [B, Tt, Ct], [B, Tt]
        audio: new Float32Array(B * Ta * Ca),
        audioMask: new Float32Array(B * Ta), // [B, Ta, Ca], [B, Ta]
      };
      for (const { p, rows, b } of subs) {
        if (!b) continue;
        const [lt, la] = [Math.min(Tt, b.Tt), Math.min(Ta, b.Ta)];
        rows.forEach(([pos], r) => {
          out.ids[pos] = b.ids[r]!;
          out.labels[pos] = relabel(p, b.labels[r]!);
          if (p.has.text) {
            out.text.set(b.text.subarray(r * b.Tt * p.Ct, (r * b.Tt + lt) * p.Ct), pos * Tt * Ct);
            out.textMask.set(b.textMask.subarray(r * b.Tt, r * b.Tt + lt), pos * Tt);
          }
          if (p.has.audio) {
            out.audio.set(b.audio.subarray(r * b.Ta * p.Ca, (r * b.Ta + la) * p.Ca), pos * Ta * Ca);
            out.audioMask.set(b.audioMask.subarray(r * b.Ta, r * b.Ta + la), pos * Ta);
          }
        });
      }
      return out;
    },
  };
}

/**
 * `fs` read through `labelMap`: a joined set maps each source on its own and joins them again (one report per
 * corpus), any other set is mapped whole (one report, under `corpus`). The result records its reports (`labelMaps`).
 */
export function mapFeatureSet(
  fs: FeatureSet,
  labelMap: LabelMap,
  corpus = corpusName(fs, 'features'),
): FeatureSet & { labelMaps: CorpusLabelMapReport[] } {
  if (fs.sources) {
    const mapped = fs.sources.map((s) => ({ corpus: s.corpus, ...applyLabelMap(s.features, labelMap) }));
    const joined = joinFeatureSets(mapped.map((m) => ({ corpus: m.corpus, features: m.featureSet })));
    return { ...joined, labelMaps: mapped.map((m) => ({ corpus: m.corpus, ...m.report })) };
  }
  const { featureSet, report } = applyLabelMap(fs, labelMap);
  return { ...featureSet, labelMaps: [{ corpus, ...report }] };
}

/**
 * --speaker-norm: every split with each utterance's tokens standardized by its speaker's own statistics (over that
 * speaker's utterances in every split of the set); utterances without a speaker are standardized by `fallback` (the
 * run's pooled raw train statistics, fusion/input-norm.ts `SpeakerFallback`), or, without one (a checkpoint from before
 * it), left as they are (the train statistics alone apply). Applied once: a set that already went through it is
 * returned as it is. `speakerStats`: each speaker's statistics (train's --speaker-norm-mix draws from them each epoch).
 */
export function standardizeSpeakers(
  fs: FeatureSet,
  fallback: SpeakerFallback | null = null,
): FeatureSet & { speakerNorm: SpeakerNormReport; speakerStats?: ReadonlyMap<string, SpeakerStats> } {
  if (fs.speakerNorm) return fs as FeatureSet & { speakerNorm: SpeakerNormReport };
  const parts = Object.values(fs.splits).map((split) => ({ split, speakers: split.speakers ?? [] }));
  const stats = speakerTokenStats(parts, fs.textDim, fs.audioDim);
  const report: SpeakerNormReport = { speakers: stats.size, bySpeaker: {}, globalOnly: {} };
  const splits: Record<string, FeatureSplit> = {};
  for (const [name, split] of Object.entries(fs.splits)) {
    const speakers = split.speakers ?? [];
    const known = Array.from({ length: split.size }, (_, i) => stats.has(speakers[i] ?? '')).filter(Boolean).length;
    report.bySpeaker[name] = known;
    report.globalOnly[name] = split.size - known;
    splits[name] = known || fallback ? speakerStandardizedSplit(split, speakers, stats, { fallback }) : split;
  }
  return { ...fs, splits, speakerNorm: report, speakerStats: stats };
}

/** One line: 'N speakers; train 960 of 960 by their speaker's statistics, dev 1109 of 1109 train statistics only (no speaker)'. */
export function formatSpeakerNorm(r: SpeakerNormReport): string {
  const parts = Object.keys(r.bySpeaker).map((s) => {
    const [k, g] = [r.bySpeaker[s]!, r.globalOnly[s]!];
    return `${s} ${k} of ${k + g} by their speaker's statistics${g ? `, ${g} by the train statistics only (no speaker)` : ''}`;
  });
  return `${r.speakers} speakers; ${parts.join('; ')}`;
}

/**
 * `fs` with a split for each name of the form 'a+b+...' (`train --train-split train+dev`, `eval --split train+dev+test`):
 * the named splits' utterances, in that order, as one split. Other names are left alone; an unknown part is refused with
 * the split names there are.
 */
export function withJoinedSplits(fs: FeatureSet, names: readonly string[], source = 'the features'): FeatureSet {
  const joined: Record<string, FeatureSplit> = {};
  for (const name of names) {
    if (fs.splits[name] || !name.includes('+')) continue;
    const parts = name.split('+').map((part) => {
      const split = fs.splits[part];
      if (!split) throw new DataError(`${source} has no split '${part}' (in '${name}'; it has: ${Object.keys(fs.splits).join(', ')})`);
      return { split, indices: Array.from({ length: split.size }, (_, i) => i) };
    });
    joined[name] = selectSplit(parts);
  }
  return Object.keys(joined).length ? { ...fs, splits: { ...fs.splits, ...joined } } : fs;
}
