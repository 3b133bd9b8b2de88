// What training needs from a FeatureSet (features.ts): input checks that stop bad data before any step, class
// weights, seeded epoch orders, and padding a batch made elsewhere (predict's encoder output) to the model's fixed
// shapes (training's own batches come out of FeatureSplit.batch already at those shapes).

import type { FeatureBatch, FeatureSet } from '../features.ts';
import type { StepInputs } from '../fusion/model.ts';
import { mulberry32 } from '@emofuse/kernels';

/** A problem with the training data, phrased for the user (file, field, fix). */
export class DataError extends Error {
  override name = 'DataError';
}

/**
 * Scans every utterance of the named splits: non-empty, labels in range, finite features, widths as declared, and
 * at least one token of each modality the model reads (`needs`; a text-only cache can train the 'text' variant).
 * Returns the longest text and audio sequences seen (at least 1), the lengths a new model is built for.
 */
export function validateFeatureSet(
  fs: FeatureSet, splits: readonly string[], source: string, needs: { text: boolean; audio: boolean } = { text: true, audio: true },
): { text: number; audio: number } {
  const longest = { text: 1, audio: 1 };
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
      longest.text = Math.max(longest.text, b.Tt);
      longest.audio = Math.max(longest.audio, b.Ta);
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
  return longest;
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
 * A batch made elsewhere (predict's encoder output) padded to the model's fixed shapes [B, Tt, Ct], [B, Ta, Ca] (longer sequences truncated to
 * Tt / Ta; rows beyond the batch get label -1 and empty masks, which the loss and metrics ignore).
 */
export function padBatch(fb: FeatureBatch, B: number, Tt: number, Ta: number, textDim: number, audioDim: number): StepInputs {
  const n = fb.ids.length;
  if (n > B) throw new Error(`padBatch: ${n} utterances do not fit a batch of ${B}`);
  const text = new Float32Array(B * Tt * textDim);
  const textMask = new Float32Array(B * Tt);
  const audio = new Float32Array(B * Ta * audioDim);
  const audioMask = new Float32Array(B * Ta);
  const labels = new Int32Array(B).fill(-1);
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
