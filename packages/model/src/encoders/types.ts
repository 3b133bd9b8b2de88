// One interface for every encoder: a batch of utterances in, padded tokens [B, T, C] and a mask [B, T] out.

export interface EncodedBatch {
  B: number;
  /** Longest sequence in the batch; shorter ones are zero-padded. */
  T: number;
  C: number;
  /** [B, T, C] tokens, row-major. */
  tokens: Float32Array;
  /** [B, T] 1 for a real token, 0 for padding. */
  mask: Float32Array;
  /** [B] real length of each sequence. */
  lengths: Int32Array;
}

interface EncoderBase {
  /** The spec as a user writes it and the cache records it: 'hash', 'logmel', 'bert:Xenova/bert-base-uncased'. */
  readonly id: string;
  /** Changes whenever the features this encoder produces for the same input change. */
  readonly version: string;
  /** Token width C. */
  readonly dim: number;
  dispose?(): Promise<void>;
}

export interface TextEncoder extends EncoderBase {
  readonly modality: 'text';
  encode(texts: readonly string[]): Promise<EncodedBatch>;
}

export interface AudioEncoder extends EncoderBase {
  readonly modality: 'audio';
  /** Each clip is mono float audio at `sampleRate` (16 kHz). */
  readonly sampleRate: number;
  /** Whisper: the stretch of audio the network attends over, 'sliced' (the clip's own frames) or 'full' (30 s);
   * the feature cache's index records it. Absent for encoders without a choice. */
  readonly window?: 'sliced' | 'full';
  /** Whisper '@all': each token holds this many layers' states, [layers, dim / layers] (layer axis outer). */
  readonly layers?: number;
  encode(clips: readonly Float32Array[]): Promise<EncodedBatch>;
}

/** Pads per-item token sequences ([len_b, C] each) into one EncodedBatch. */
export function padSequences(seqs: readonly { data: Float32Array; length: number }[], C: number): EncodedBatch {
  const B = seqs.length;
  const T = Math.max(1, ...seqs.map((s) => s.length));
  const tokens = new Float32Array(B * T * C); // [B, T, C]
  const mask = new Float32Array(B * T); // [B, T]
  const lengths = new Int32Array(B);
  seqs.forEach((s, b) => {
    tokens.set(s.data.subarray(0, s.length * C), b * T * C);
    mask.fill(1, b * T, b * T + s.length);
    lengths[b] = s.length;
  });
  return { B, T, C, tokens, mask, lengths };
}

/** The real (unpadded) tokens of item b: a view of [lengths[b], C]. */
export function itemTokens(batch: EncodedBatch, b: number): Float32Array {
  const start = b * batch.T * batch.C;
  return batch.tokens.subarray(start, start + batch.lengths[b]! * batch.C);
}
