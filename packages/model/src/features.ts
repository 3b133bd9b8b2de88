// The contract between the feature side (encoders, datasets, feature cache) and the model side (training,
// eval, predict): a labelled set of variable-length token sequences per utterance, read in padded batches.
// Utterances are stored unpadded (a cache may keep float16 on disk); `batch` copies each chosen utterance once,
// straight into its place in a batch padded to a given shape (training and eval pass the batch's own lengths,
// bucketed: train/data.ts `batchShape`) or to the longest in it.

import type { CorpusLabelMapReport } from './datasets/label-map-types.ts';

export interface FeatureBatch {
  ids: string[];
  /** [B] class index, or -1 when unlabelled (predict) or a padding row. */
  labels: Int32Array;
  /** [B, Tt, textDim] zero-padded text tokens, and [B, Tt] mask (1 keep, 0 pad). */
  text: Float32Array;
  textMask: Float32Array;
  Tt: number;
  /** [B, Ta, audioDim] zero-padded audio tokens, and [B, Ta] mask. */
  audio: Float32Array;
  audioMask: Float32Array;
  Ta: number;
}

export interface FeatureSplit {
  readonly size: number;
  readonly ids: readonly string[];
  /** [size] class index per utterance. */
  readonly labels: Int32Array;
  /** [size] text and audio tokens per utterance (unpadded), for grouping utterances of similar length into batches. */
  readonly textLens: Int32Array;
  readonly audioLens: Int32Array;
  /** [size] speaker per utterance, when the source records it (speaker-grouped folds). */
  readonly speakers?: readonly string[];
  /** [size] the source corpus of each utterance, in a set joined from several caches (`joinFeatureSets`). */
  readonly corpora?: readonly string[];
  /** The chosen utterances, padded to `shape` (a model's batch), or without it to the longest text and audio among them. */
  batch(indices: readonly number[], shape?: BatchShape): FeatureBatch;
}

/**
 * A batch of fixed shape: `rows` rows (rows beyond the chosen utterances are padding: label -1, empty masks), Tt
 * text and Ta audio tokens (longer utterances are truncated to them).
 */
export interface BatchShape {
  rows: number;
  Tt: number;
  Ta: number;
}

export interface FeatureSet {
  /** Class names in label order, e.g. MELD's neutral, joy, surprise, anger, sadness, disgust, fear. */
  classNames: readonly string[];
  textDim: number;
  audioDim: number;
  /** Whisper '@all' caches: layers per audio token, [audioLayers, audioDim / audioLayers] (absent: 1). */
  audioLayers?: number;
  /** Encoder ids as given to `emofuse extract`, e.g. 'hash', 'bert:Xenova/bert-base-uncased', 'logmel'. */
  textEncoder: string;
  audioEncoder: string;
  splits: Readonly<Record<string, FeatureSplit>>;
  /**
   * A set joined from several (`train --features A,B`: datasets/feature-sets.ts `joinFeatureSets`): each source as it
   * was read, under its corpus name (what `FeatureSplit.corpora` holds). A source without a modality (a text-only
   * cache: audio encoder 'none') gives its utterances no tokens of it.
   */
  sources?: readonly FeatureSource[];
  /** The label map this set was read through, one report per source corpus (datasets/feature-sets.ts `mapFeatureSet`). */
  labelMaps?: readonly CorpusLabelMapReport[] /** Set once each speaker's tokens were standardized with the ' +
    'speaker's own statistics (feature-sets.ts `standardizeSpeakers`). */;
  speakerNorm?: SpeakerNormReport;
}

/** --speaker-norm: how many utterances per split were standardized with their speaker's statistics, and how many had no speaker. */
export interface SpeakerNormReport {
  speakers: number;
  bySpeaker: Record<string, number>;
  /** Utterances without a known speaker: the train statistics only. */
  globalOnly: Record<string, number>;
}

/** One feature set of a joined set, and the corpus name its utterances carry. */
export interface FeatureSource {
  corpus: string;
  features: FeatureSet;
}

/** One utterance's features, unpadded: text [textLen, textDim], audio [audioLen, audioDim]. */
export interface UtteranceFeatures {
  id: string;
  label: number;
  text: Float32Array;
  textLen: number;
  audio: Float32Array;
  audioLen: number;
}

/** What `packBatch` needs to know of a stored utterance; its tokens are copied by the caller's `copy`. */
export interface StoredUtteranceInfo {
  id: string;
  label: number;
  textLen: number;
  audioLen: number;
}

/**
 * The one batching routine of every FeatureSplit: allocates the batch arrays at their final shape and lets `copy`
 * write the first `len` tokens of each chosen utterance's `modality` straight into `dst` at `offset` (one copy).
 */
export function packBatch<U extends StoredUtteranceInfo>(
  utts: readonly U[],
  indices: readonly number[],
  textDim: number,
  audioDim: number,
  shape: BatchShape | undefined,
  copy: (u: U, modality: 'text' | 'audio', dst: Float32Array, offset: number, len: number) => void,
): FeatureBatch {
  const chosen = indices.map((i) => {
    const u = utts[i];
    if (!u) throw new RangeError(`utterance index ${i} out of range [0, ${utts.length})`);
    return u;
  });
  if (shape && chosen.length > shape.rows) throw new RangeError(`${chosen.length} utterances do not fit a batch of ${shape.rows}`);
  const B = shape?.rows ?? chosen.length;
  const Tt = shape?.Tt ?? Math.max(1, ...chosen.map((u) => u.textLen));
  const Ta = shape?.Ta ?? Math.max(1, ...chosen.map((u) => u.audioLen));
  const text = new Float32Array(B * Tt * textDim); // [B, Tt, textDim]
  const textMask = new Float32Array(B * Tt); // [B, Tt]
  const audio = new Float32Array(B * Ta * audioDim); // [B, Ta, audioDim]
  const audioMask = new Float32Array(B * Ta); // [B, Ta]
  const labels = new Int32Array(B).fill(-1); // [B]
  chosen.forEach((u, b) => {
    const [lt, la] = [Math.min(Tt, u.textLen), Math.min(Ta, u.audioLen)];
    labels[b] = u.label;
    if (lt) copy(u, 'text', text, b * Tt * textDim, lt);
    textMask.fill(1, b * Tt, b * Tt + lt);
    if (la) copy(u, 'audio', audio, b * Ta * audioDim, la);
    audioMask.fill(1, b * Ta, b * Ta + la);
  });
  return { ids: chosen.map((u) => u.id), labels, text, textMask, Tt, audio, audioMask, Ta };
}

/** A FeatureSplit over utterances held in memory (tests, generated arrays, small caches). */
export function memoryFeatureSplit(utterances: readonly UtteranceFeatures[], textDim: number, audioDim: number): FeatureSplit {
  const dims = { text: textDim, audio: audioDim };
  return {
    size: utterances.length,
    ids: utterances.map((u) => u.id),
    labels: Int32Array.from(utterances, (u) => u.label),
    textLens: Int32Array.from(utterances, (u) => u.textLen),
    audioLens: Int32Array.from(utterances, (u) => u.audioLen),
    batch: (indices, shape) =>
      packBatch(utterances, indices, textDim, audioDim, shape, (u, m, dst, offset, len) =>
        dst.set(u[m].subarray(0, len * dims[m]), offset),
      ),
  };
}

/**
 * A split made of chosen utterances of other splits, in the order given (cross-validation folds over train + dev):
 * `batch` asks each source split for its rows at the target lengths and copies them into place.
 */
export function selectSplit(parts: readonly { split: FeatureSplit; indices: readonly number[] }[]): FeatureSplit {
  const refs = parts.flatMap((p, k) =>
    p.indices.map((i) => {
      if (!(Number.isInteger(i) && i >= 0 && i < p.split.size))
        throw new RangeError(`utterance index ${i} out of range [0, ${p.split.size})`);
      return [k, i] as const;
    }),
  );
  const speakers = parts.every((p) => p.split.speakers) ? refs.map(([k, i]) => parts[k]!.split.speakers![i]!) : undefined;
  const corpora = parts.every((p) => p.split.corpora) ? refs.map(([k, i]) => parts[k]!.split.corpora![i]!) : undefined;
  return {
    size: refs.length,
    ids: refs.map(([k, i]) => parts[k]!.split.ids[i]!),
    labels: Int32Array.from(refs, ([k, i]) => parts[k]!.split.labels[i]!),
    textLens: Int32Array.from(refs, ([k, i]) => parts[k]!.split.textLens[i]!),
    audioLens: Int32Array.from(refs, ([k, i]) => parts[k]!.split.audioLens[i]!),
    ...(speakers ? { speakers } : {}),
    ...(corpora ? { corpora } : {}),
    batch(indices, shape) {
      const chosen = indices.map((j) => {
        const r = refs[j];
        if (!r) throw new RangeError(`utterance index ${j} out of range [0, ${refs.length})`);
        return r;
      });
      if (shape && chosen.length > shape.rows) throw new RangeError(`${chosen.length} utterances do not fit a batch of ${shape.rows}`);
      // one sub-batch per source split (unpadded lengths when no shape is given), then its rows copied into place
      const subs = parts.map((p, k) => {
        const rows = chosen.flatMap(([kk, i], pos) => (kk === k ? [[pos, i] as const] : []));
        return {
          rows,
          b: rows.length
            ? p.split.batch(
                rows.map(([, i]) => i),
                shape && { ...shape, rows: rows.length },
              )
            : undefined,
        };
      });
      const B = shape?.rows ?? chosen.length;
      const Tt = shape?.Tt ?? Math.max(1, ...subs.map((s) => s.b?.Tt ?? 1));
      const Ta = shape?.Ta ?? Math.max(1, ...subs.map((s) => s.b?.Ta ?? 1));
      const first = subs.find((s) => s.b)?.b;
      const Ct = first ? first.text.length / (first.labels.length * first.Tt) : 1;
      const Ca = first ? first.audio.length / (first.labels.length * first.Ta) : 1;
      const out: FeatureBatch = {
        ids: new Array<string>(chosen.length),
        labels: new Int32Array(B).fill(-1),
        Tt,
        Ta,
        text: new Float32Array(B * Tt * Ct),
        textMask: new Float32Array(B * Tt),
        audio: new Float32Array(B * Ta * Ca),
        audioMask: new Float32Array(B * Ta),
      };
      for (const { rows, b } of subs) {
        if (!b) continue;
        const [lt, la] = [Math.min(Tt, b.Tt), Math.min(Ta, b.Ta)];
        rows.forEach(([pos], r) => {
          out.ids[pos] = b.ids[r]!;
          out.labels[pos] = b.labels[r]!;
          out.text.set(b.text.subarray(r * b.Tt * Ct, (r * b.Tt + lt) * Ct), pos * Tt * Ct);
          out.textMask.set(b.textMask.subarray(r * b.Tt, r * b.Tt + lt), pos * Tt);
          out.audio.set(b.audio.subarray(r * b.Ta * Ca, (r * b.Ta + la) * Ca), pos * Ta * Ca);
          out.audioMask.set(b.audioMask.subarray(r * b.Ta, r * b.Ta + la), pos * Ta);
        });
      }
      return out;
    },
  };
}

/**
 * Speaker-grouped folds: all of a speaker's utterances land in one fold. Speakers are dealt, largest first (ties by
 * name), to the fold with the fewest utterances so far (ties: the lower fold). Returns utterance indices per fold.
 */
export function speakerFolds(speakers: readonly string[], k: number): number[][] {
  if (!(Number.isInteger(k) && k >= 2)) throw new RangeError(`folds must be an integer >= 2, got ${k}`);
  const bySpeaker = new Map<string, number[]>();
  for (const [i, s] of speakers.entries()) bySpeaker.set(s, [...(bySpeaker.get(s) ?? []), i]);
  if (bySpeaker.size < k) throw new RangeError(`${k} speaker-grouped folds need at least ${k} speakers, found ${bySpeaker.size}`);
  const order = [...bySpeaker.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const folds: number[][] = Array.from({ length: k }, () => []);
  for (const [, idx] of order) {
    let f = 0;
    for (let j = 1; j < k; j++) if (folds[j]!.length < folds[f]!.length) f = j;
    folds[f]!.push(...idx);
  }
  return folds.map((f) => f.sort((a, b) => a - b));
}
