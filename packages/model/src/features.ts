// The contract between the feature side (encoders, datasets, feature cache) and the model side (training,
// eval, predict): a labelled set of variable-length token sequences per utterance, read in padded batches.
// Utterances are stored unpadded (a cache may keep float16 on disk); `batch` pads to the longest in the batch.

export interface FeatureBatch {
  ids: string[];
  /** [B] class index, or -1 when unlabelled (predict). */
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
  /** Pads the chosen utterances to the longest text and audio among them. */
  batch(indices: readonly number[]): FeatureBatch;
}

export interface FeatureSet {
  /** Class names in label order, e.g. MELD's neutral, joy, surprise, anger, sadness, disgust, fear. */
  classNames: readonly string[];
  textDim: number;
  audioDim: number;
  /** Encoder ids as given to `emofuse extract`, e.g. 'hash', 'bert:Xenova/bert-base-uncased', 'logmel'. */
  textEncoder: string;
  audioEncoder: string;
  splits: Readonly<Record<string, FeatureSplit>>;
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

/** A FeatureSplit over utterances held in memory (tests, generated arrays, small caches). */
export function memoryFeatureSplit(utterances: readonly UtteranceFeatures[], textDim: number, audioDim: number): FeatureSplit {
  const ids = utterances.map((u) => u.id);
  const labels = Int32Array.from(utterances, (u) => u.label);
  return {
    size: utterances.length,
    ids,
    labels,
    batch(indices) {
      const chosen = indices.map((i) => {
        const u = utterances[i];
        if (!u) throw new RangeError(`utterance index ${i} out of range [0, ${utterances.length})`);
        return u;
      });
      const Tt = Math.max(1, ...chosen.map((u) => u.textLen));
      const Ta = Math.max(1, ...chosen.map((u) => u.audioLen));
      const B = chosen.length;
      const text = new Float32Array(B * Tt * textDim);
      const textMask = new Float32Array(B * Tt);
      const audio = new Float32Array(B * Ta * audioDim);
      const audioMask = new Float32Array(B * Ta);
      chosen.forEach((u, b) => {
        text.set(u.text.subarray(0, u.textLen * textDim), b * Tt * textDim);
        textMask.fill(1, b * Tt, b * Tt + u.textLen);
        audio.set(u.audio.subarray(0, u.audioLen * audioDim), b * Ta * audioDim);
        audioMask.fill(1, b * Ta, b * Ta + u.audioLen);
      });
      return { ids: chosen.map((u) => u.id), labels: Int32Array.from(chosen, (u) => u.label), text, textMask, Tt, audio, audioMask, Ta };
    },
  };
}
