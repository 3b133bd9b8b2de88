// What training needs from a FeatureSet (features.ts): input checks that stop bad data before any step, class
// weights, seeded epoch orders that group utterances of similar length into batches, each batch's bucketed
// lengths, and padding a batch made elsewhere (predict's encoder output) to the model's longest shapes.

import type { BatchShape, FeatureBatch, FeatureSet, FeatureSplit } from '../features.ts';
import type { StepInputs } from '../fusion/model.ts';
import { mulberry32 } from '@emofuse/kernels';
import { DataError } from '../errors.ts';
import { flagOf } from './settings.ts';

/**
 * Scans every utterance of the named splits: non-empty, labels in range, finite features, widths as declared, and
 * at least one token of each modality the model reads (`needs`; a text-only cache can train the 'text' variant).
 * In a joined set (`fs.sources`) an utterance whose source lacks a modality (a text-only cache beside audio caches)
 * may lack it, never both; the sources must share their class names (else a label map must unify them).
 * Returns the longest text and audio sequences seen (at least 1), the lengths a new model is built for.
 */
export function validateFeatureSet(
  fs: FeatureSet,
  splits: readonly string[],
  source: string,
  needs: { text: boolean; audio: boolean } = { text: true, audio: true },
): { text: number; audio: number } {
  const longest = { text: 1, audio: 1 };
  const K = fs.classNames.length;
  if (K < 2) throw new DataError(`${source}: needs at least 2 class names, got ${K} (${fs.classNames.join(', ') || 'none'})`);
  for (const [name, dim] of [
    ['textDim', fs.textDim],
    ['audioDim', fs.audioDim],
  ] as const) {
    if (!Number.isInteger(dim) || dim < 1) throw new DataError(`${source}: ${name} must be a positive integer, got ${dim}`);
  }
  const sources = new Map((fs.sources ?? []).map((s) => [s.corpus, s.features]));
  const differ = [...sources].filter(([, f]) => f.classNames.join('\u0000') !== fs.classNames.join('\u0000'));
  if (differ.length) {
    throw new DataError(
      `${source}: the joined caches are labelled differently ` +
        `(${[...sources].map(([c, f]) => `${c}: ${f.classNames.join(', ')}`).join('; ')}): ` +
        `read them through one label map, e.g. ${flagOf('labelMap')} meld7`,
    );
  }
  for (const m of ['text', 'audio'] as const) {
    if (needs[m] && sources.size && ![...sources.values()].some((f) => f[`${m}Encoder`] !== 'none'))
      throw new DataError(
        `${source}: none of the joined caches (${[...sources.keys()].join(', ')}) has ${m}, which ${flagOf('fusion')} reads`,
      );
  }
  /** The modalities utterance i of `split` must have: those the model reads that its source holds (joined sets). */
  const needsOf = (split: FeatureSplit, i: number) => {
    const src = split.corpora && sources.get(split.corpora[i]!);
    return src ? { text: needs.text && src.textEncoder !== 'none', audio: needs.audio && src.audioEncoder !== 'none' } : needs;
  };
  for (const s of splits) {
    const split = fs.splits[s];
    if (!split)
      throw new DataError(
        `${source}: has no split '${s}' (it has: ${Object.keys(fs.splits).join(', ') || 'none'}); pass another with ` +
          `${flagOf('trainSplit')} / ${flagOf('devSplit')} / ${flagOf('split')}`,
      );
    if (split.size === 0) throw new DataError(`${source}: split '${s}' is empty; nothing to train or evaluate on`);
    for (let i = 0; i < split.size; i += 64) {
      const idx = Array.from({ length: Math.min(64, split.size - i) }, (_, j) => i + j);
      const b = split.batch(idx);
      longest.text = Math.max(longest.text, b.Tt);
      longest.audio = Math.max(longest.audio, b.Ta);
      b.ids.forEach((id, r) => {
        const y = b.labels[r]!;
        if (!(Number.isInteger(y) && y >= 0 && y < K)) {
          throw new DataError(
            `${source}: split '${s}', utterance '${id}': label ${y} is not a class index in [0, ${K}) (classes: ` +
              `${fs.classNames.join(', ')})`,
          );
        }
        const need = needsOf(split, i + r);
        const hasText = b.textMask.subarray(r * b.Tt, (r + 1) * b.Tt).some((m) => m > 0);
        const hasAudio = b.audioMask.subarray(r * b.Ta, (r + 1) * b.Ta).some((m) => m > 0);
        const where = `${source}: split '${s}', utterance '${id}'${split.corpora ? ` (from ${split.corpora[i + r]})` : ''}`;
        if (split.corpora && !hasText && !hasAudio)
          throw new DataError(`${where}: neither text nor audio tokens; re-extract it or drop the utterance`);
        if (need.text && !hasText) {
          throw new DataError(`${where}: no text tokens (only ${flagOf('fusion')} audio can use it)`);
        }
        if (need.audio && !hasAudio) {
          throw new DataError(`${where}: no audio tokens (a text-only cache trains only ${flagOf('fusion')} text)`);
        }
      });
      if (b.text.length !== idx.length * b.Tt * fs.textDim)
        throw new DataError(`${source}: split '${s}': text features are not ${fs.textDim} wide (textDim)`);
      if (b.audio.length !== idx.length * b.Ta * fs.audioDim)
        throw new DataError(`${source}: split '${s}': audio features are not ${fs.audioDim} wide (audioDim)`);
      for (const [field, arr, T, C] of [
        ['text', b.text, b.Tt, fs.textDim],
        ['audio', b.audio, b.Ta, fs.audioDim],
      ] as const) {
        for (let k = 0; k < arr.length; k++) {
          if (!Number.isFinite(arr[k]!)) {
            const r = Math.floor(k / (T * C));
            throw new DataError(
              `${source}: split '${s}', utterance '${b.ids[r]}': ${field} feature [token ${Math.floor(k / C) % T}, channel ` +
                `${k % C}] is ${arr[k]}; re-extract it or drop the utterance`,
            );
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
  return shuffled(n, (Math.imul(seed + 1, 0x27d4eb2d) ^ Math.imul(epoch + 1, 0x165667b1)) >>> 0);
}

/** 0..n-1 in a Fisher-Yates order drawn from mulberry32(stream). */
function shuffled(n: number, stream: number): number[] {
  const r = mulberry32(stream);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * A batch is padded to its longest utterance rounded up to a multiple of this (at most the model's length), so a
 * model meets few distinct shapes: MELD text (1..95 tokens) gives 12.
 */
export const LENGTH_BUCKET = 8;
/**
 * Utterances are sorted by length within pools of this many batches of the shuffled epoch order: batches of
 * similar lengths, still a different mix every epoch (the "sortish" sampler of fairseq / torchtext's BucketIterator).
 */
export const BATCHES_PER_POOL = 50;

/** The padded length of a batch whose longest utterance has `longest` tokens, for a model of at most `cap`. */
export function bucketLength(longest: number, cap: number): number {
  return Math.min(cap, Math.max(1, Math.ceil(longest / LENGTH_BUCKET) * LENGTH_BUCKET));
}

/** The shape a batch of `indices` is packed at: `rows` rows, each modality at its bucketed longest (truncated at the model's lengths). */
export function batchShape(
  split: Pick<FeatureSplit, 'textLens' | 'audioLens'>,
  indices: readonly number[],
  rows: number,
  maxTextLen: number,
  maxAudioLen: number,
): BatchShape {
  let [lt, la] = [0, 0];
  for (const i of indices) [lt, la] = [Math.max(lt, split.textLens[i]!), Math.max(la, split.audioLens[i]!)];
  return { rows, Tt: bucketLength(lt, maxTextLen), Ta: bucketLength(la, maxAudioLen) };
}

/** What a batch costs, per utterance: its tokens as the model reads them (text + audio, each truncated to the model's length). */
export function lengthKeys(split: Pick<FeatureSplit, 'textLens' | 'audioLens'>, maxTextLen: number, maxAudioLen: number): Int32Array {
  return split.textLens.map((t, i) => Math.min(t, maxTextLen) + Math.min(split.audioLens[i]!, maxAudioLen));
}

/**
 * The batches of epoch `epoch`, each a list of utterance indices: the epoch's shuffled order (epochOrder), cut into
 * pools of BATCHES_PER_POOL * B, each pool sorted by `keys` (stable: equal keys keep the shuffled order) and cut into
 * batches of B, then the batches shuffled. Every utterance once; ceil(n / B) batches, only the last one of the last
 * pool short. With `draw` balancing corpora, the epoch's order is balancedOrder's n draws instead (some utterances
 * repeated, others left out). A function of (keys, B, seed, epoch, draw) alone, so a resumed run gets the same batches.
 */
export function epochBatches(
  keys: ArrayLike<number>,
  B: number,
  seed: number,
  epoch: number,
  draw?: { corpora: readonly string[]; balance: Balance },
): number[][] {
  const order =
    draw && draw.balance !== 'none' ? balancedOrder(draw.corpora, draw.balance, seed, epoch) : epochOrder(keys.length, seed, epoch);
  const pool = B * BATCHES_PER_POOL;
  const batches: number[][] = [];
  for (let p = 0; p < order.length; p += pool) {
    const chunk = order.slice(p, p + pool).sort((i, j) => keys[i]! - keys[j]!);
    for (let b = 0; b < chunk.length; b += B) batches.push(chunk.slice(b, b + B));
  }
  const perm = shuffled(batches.length, (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ 0x5bd1e995) >>> 0);
  return perm.map((k) => batches[k]!);
}

/**
 * How a joined train split's corpora share an epoch (--balance): 'none' every utterance once (a corpus as often as
 * it is large), 'corpus' each corpus equally often, 'sqrt' each corpus in proportion to the square root of its size
 * (between the two: temperature sampling with T = 2, as multilingual models sample languages).
 */
export type Balance = 'none' | 'corpus' | 'sqrt';

/** Each corpus's share of a balanced epoch of n draws (largest remainders: the shares add up to n exactly). */
export function corpusShares(sizes: readonly number[], balance: Balance): number[] {
  const n = sizes.reduce((a, b) => a + b, 0);
  const w = sizes.map((m) => (balance === 'corpus' ? 1 : balance === 'sqrt' ? Math.sqrt(m) : m));
  const W = w.reduce((a, b) => a + b, 0);
  const exact = w.map((x) => (n * x) / W);
  const shares = exact.map(Math.floor);
  const byRemainder = exact.map((x, c) => [x - Math.floor(x), c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const left = n - shares.reduce((a, b) => a + b, 0);
  for (let k = 0; k < left; k++) shares[byRemainder[k]![1]]! += 1;
  return shares;
}

/**
 * Epoch `epoch`'s n draws when the corpora are balanced (corpusShares): corpus c gives its share as whole shuffled
 * passes over its utterances and a part of one more (a small corpus repeats, a large one is cut short; each pass and
 * cut drawn from (seed, epoch, c)), the draws of all corpora then shuffled together. Still n long, so an epoch keeps
 * its step count; a function of (corpora, balance, seed, epoch) alone, so a resumed run gets the same draws.
 */
export function balancedOrder(corpora: readonly string[], balance: Balance, seed: number, epoch: number): number[] {
  const names = [...new Set(corpora)];
  const members = names.map((name) => corpora.flatMap((c, i) => (c === name ? [i] : [])));
  const shares = corpusShares(
    members.map((m) => m.length),
    balance,
  );
  const drawn: number[] = [];
  members.forEach((m, c) => {
    for (let pass = 0; pass * m.length < shares[c]!; pass++) {
      const stream = (Math.imul(seed + 1, 0x7feb352d) ^ Math.imul(epoch + 1, 0x846ca68b) ^ Math.imul(c + 1, 0x2545f491) ^ pass) >>> 0;
      const take = Math.min(m.length, shares[c]! - pass * m.length);
      drawn.push(
        ...shuffled(m.length, stream)
          .slice(0, take)
          .map((k) => m[k]!),
      );
    }
  });
  return epochOrder(drawn.length, seed, epoch).map((k) => drawn[k]!);
}

/** All of 0..n-1 in batches of B sorted by `keys` (evaluation: order does not matter, padding does). */
export function sortedBatches(keys: ArrayLike<number>, B: number): number[][] {
  const order = Array.from({ length: keys.length }, (_, i) => i).sort((i, j) => keys[i]! - keys[j]!);
  return Array.from({ length: Math.ceil(order.length / B) }, (_, b) => order.slice(b * B, (b + 1) * B));
}

/**
 * A batch made elsewhere (predict's encoder output) padded to the model's longest shapes [B, Tt, Ct], [B, Ta, Ca] (longer sequences
 * truncated to Tt / Ta; rows beyond the batch get label -1 and empty masks, which the loss and metrics ignore).
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

/**
 * Modality dropout: each row of `b` that has both text and audio tokens loses one of them (its mask and tokens
 * zeroed; text or audio 50/50) with probability `p`. The draws of row r at step `step` come from (seed, step, r)
 * alone, so a resumed run drops the same ones. Returns how many rows lost text and audio. Mutates `b`.
 */
export function dropModalities(b: FeatureBatch, p: number, seed: number, step: number): { text: number; audio: number } {
  const dropped = { text: 0, audio: 0 };
  if (!(p > 0)) return dropped;
  const { Tt, Ta } = b;
  const Ct = b.text.length / (b.labels.length * Tt);
  const Ca = b.audio.length / (b.labels.length * Ta);
  for (let r = 0; r < b.labels.length; r++) {
    const hasText = b.textMask.subarray(r * Tt, (r + 1) * Tt).some((m) => m > 0);
    const hasAudio = b.audioMask.subarray(r * Ta, (r + 1) * Ta).some((m) => m > 0);
    if (!hasText || !hasAudio) continue;
    const rand = mulberry32(
      (Math.imul(seed + 1, 0x2c1b3c6d) ^ Math.imul(step + 1, 0x297a2d39) ^ Math.imul(r + 1, 0x1b873593) ^ 0x68e31da4) >>> 0,
    );
    if (rand() >= p) continue;
    if (rand() < 0.5) {
      b.textMask.fill(0, r * Tt, (r + 1) * Tt); // [Tt] of row r
      b.text.fill(0, r * Tt * Ct, (r + 1) * Tt * Ct); // [Tt, Ct] of row r
      dropped.text++;
    } else {
      b.audioMask.fill(0, r * Ta, (r + 1) * Ta); // [Ta] of row r
      b.audio.fill(0, r * Ta * Ca, (r + 1) * Ta * Ca); // [Ta, Ca] of row r
      dropped.audio++;
    }
  }
  return dropped;
}
