// Checking an exported ONNX model against our own forward: the same features through onnxruntime (CPU execution
// provider) and through FusionModel.predict on a backend; the worst logit and probability differences.
// ONNX gets each batch cut to its longest real text and audio (the dynamic lengths); our model gets the batch
// padded to its fixed lengths, so the check also covers the masking of padding.

import { createRequire } from 'node:module';
import type * as OrtTypes from 'onnxruntime-node';
import type { FeatureBatch } from '../features.ts';
import type { FusionModel } from '../fusion/model.ts';
import type { TrainableTextEncoder } from '../fusion/text-encoder.ts';
import { argmax, softmax } from '../metrics/metrics.ts';
import { type AudioOf, predictTokens } from '../train/finetune-text.ts';
import { padBatch } from '../train/data.ts';
import { mulberry32 } from '@emofuse/kernels';
import { gaussian } from '../random.ts';
import { ExportError } from './fusion-onnx.ts';

const require = createRequire(import.meta.url);

export function loadOnnxRuntime(): typeof OrtTypes {
  try {
    return require('onnxruntime-node') as typeof OrtTypes;
  } catch (err) {
    throw new ExportError(`onnxruntime-node could not be loaded to check the export: ${(err as Error).message.split('\n')[0]}`);
  }
}

export interface ExportCheck {
  utterances: number;
  /** max |logit_onnx - logit_ours| over every utterance and class. */
  maxAbsLogits: number;
  maxAbsProbabilities: number;
  /** Utterances whose top class differs. */
  argmaxDisagreements: number;
  backend: string;
}

/** Onnx model's logits [n, K] for a batch of unpadded features (cut to the model's maximum lengths). */
export async function runOnnx(
  session: OrtTypes.InferenceSession,
  ort: typeof OrtTypes,
  fb: FeatureBatch,
  dims: { textDim: number; audioDim: number; maxTextLen: number; maxAudioLen: number; audioLayers?: number },
): Promise<{ logits: Float32Array; probabilities: Float32Array }> {
  const n = fb.ids.length;
  const Tt = Math.min(fb.Tt, dims.maxTextLen);
  const Ta = Math.min(fb.Ta, dims.maxAudioLen);
  const cut = (x: Float32Array, T: number, Tn: number, C: number) => {
    const out = new Float32Array(n * Tn * C);
    for (let b = 0; b < n; b++) out.set(x.subarray(b * T * C, (b * T + Tn) * C), b * Tn * C);
    return out;
  };
  const r = await session.run({
    text: new ort.Tensor('float32', cut(fb.text, fb.Tt, Tt, dims.textDim), [n, Tt, dims.textDim]),
    text_mask: new ort.Tensor('float32', cut(fb.textMask, fb.Tt, Tt, 1), [n, Tt]),
    // a mixed-layers model reads [n, Ta, La, Ca / La] (fusion-onnx.ts)
    audio: new ort.Tensor('float32', cut(fb.audio, fb.Ta, Ta, dims.audioDim), audioShape(n, Ta, dims.audioDim, dims.audioLayers ?? 1)),
    audio_mask: new ort.Tensor('float32', cut(fb.audioMask, fb.Ta, Ta, 1), [n, Ta]),
  });
  return { logits: r.logits!.data as Float32Array, probabilities: r.probabilities!.data as Float32Array };
}

const audioShape = (n: number, Ta: number, Ca: number, La: number) => (La > 1 ? [n, Ta, La, Ca / La] : [n, Ta, Ca]);

/**
 * Compares the ONNX model with `model` on every batch; `prepare`: what our forward gets instead of a batch the graph
 * gets (a --speaker-norm checkpoint's graph folds in the lone-utterance statistics our forward applies beforehand).
 */
export async function checkOnnxAgainstModel(
  onnx: Uint8Array,
  model: FusionModel,
  batches: readonly FeatureBatch[],
  prepare: (fb: FeatureBatch) => FeatureBatch = (fb) => fb,
): Promise<ExportCheck> {
  const ort = loadOnnxRuntime();
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const c = model.config;
  const K = c.numClasses;
  const out: ExportCheck = { utterances: 0, maxAbsLogits: 0, maxAbsProbabilities: 0, argmaxDisagreements: 0, backend: model.backend.name };
  try {
    for (const fb of batches) {
      const n = fb.ids.length;
      const onnxOut = await runOnnx(session, ort, fb, c);
      const ours = await model.predict(padBatch(prepare(fb), n, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)); // [n, K]
      for (let b = 0; b < n; b++) {
        const row = Array.from(ours.subarray(b * K, (b + 1) * K));
        const m = Math.max(...row);
        const e = row.map((x) => Math.exp(x - m));
        const s = e.reduce((x, y) => x + y, 0);
        let best = 0;
        let bestOnnx = 0;
        for (let k = 0; k < K; k++) {
          const lo = onnxOut.logits[b * K + k]!;
          out.maxAbsLogits = Math.max(out.maxAbsLogits, Math.abs(lo - row[k]!));
          out.maxAbsProbabilities = Math.max(out.maxAbsProbabilities, Math.abs(onnxOut.probabilities[b * K + k]! - e[k]! / s));
          if (row[k]! > row[best]!) best = k;
          if (lo > onnxOut.logits[b * K + bestOnnx]!) bestOnnx = k;
        }
        if (best !== bestOnnx) out.argmaxDisagreements++;
        if (!Number.isFinite(out.maxAbsLogits)) throw new ExportError(`ONNX or model output is not finite for '${fb.ids[b]}'`);
      }
      out.utterances += n;
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * Compares an exported fine-tuned text model (its encoder in the graph, token ids in) with the encoder + head on their
 * backend (predictTokens: the same forward as predict and eval) on token rows, B a batch: ONNX gets each batch padded
 * to its longest row, ours to its bucketed length.
 */
export async function checkTokenOnnxAgainstModel(
  onnx: Uint8Array,
  m: { encoder: TrainableTextEncoder; model: FusionModel },
  rows: readonly (readonly number[])[],
  B = 8,
  audioOf?: AudioOf,
): Promise<ExportCheck> {
  const ort = loadOnnxRuntime();
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const c = m.model.config;
  const K = c.numClasses;
  const out: ExportCheck = {
    utterances: 0,
    maxAbsLogits: 0,
    maxAbsProbabilities: 0,
    argmaxDisagreements: 0,
    backend: m.model.backend.name,
  };
  try {
    for (let s = 0; s < rows.length; s += B) {
      const chunk = rows.slice(s, s + B);
      const n = chunk.length;
      const T = Math.max(...chunk.map((r) => r.length));
      const ids = new BigInt64Array(n * T);
      const mask = new Float32Array(n * T);
      chunk.forEach((r, b) => {
        r.forEach((id, t) => {
          ids[b * T + t] = BigInt(id);
          mask[b * T + t] = 1;
        });
      });
      // a head that reads audio gets the rows' audio features (the same arrays on both sides); a text head none
      const idx = chunk.map((_, b) => s + b);
      const au = audioOf?.(idx) ?? { audio: new Float32Array(n * c.audioDim), audioMask: new Float32Array(n) };
      const Ta = au.audioMask.length / n;
      const r = await session.run({
        input_ids: new ort.Tensor('int64', ids, [n, T]),
        text_mask: new ort.Tensor('float32', mask, [n, T]),
        audio: new ort.Tensor('float32', au.audio, audioShape(n, Ta, c.audioDim, c.audioLayers ?? 1)),
        audio_mask: new ort.Tensor('float32', au.audioMask, [n, Ta]),
      });
      const [lo, po] = [r.logits!.data as Float32Array, r.probabilities!.data as Float32Array];
      const ours = await predictTokens(m.model.backend, m, chunk, n, audioOf && ((j) => audioOf(j.map((i) => s + i)))); // [n][K] logits
      chunk.forEach((_, b) => {
        const row = ours[b]!;
        const p = softmax(row, 0, K);
        for (let k = 0; k < K; k++) {
          out.maxAbsLogits = Math.max(out.maxAbsLogits, Math.abs(lo[b * K + k]! - row[k]!));
          out.maxAbsProbabilities = Math.max(out.maxAbsProbabilities, Math.abs(po[b * K + k]! - p[k]!));
        }
        if (argmax(row, 0, K) !== argmax(lo, b * K, K)) out.argmaxDisagreements++;
        if (!Number.isFinite(out.maxAbsLogits)) throw new ExportError(`ONNX or model output is not finite for token row ${s + b}`);
      });
      out.utterances += n;
    }
  } finally {
    await session.release();
  }
  return out;
}

/** Seeded N(0, 1) audio features for `count` rows, lengths in [1, maxLen] (the first at maxLen), padded per batch. */
export function randomAudioOf(count: number, audioDim: number, maxLen: number, seed = 2): AudioOf {
  const rand = gaussian(mulberry32(seed));
  const uniform = mulberry32(seed + 1);
  const rows = Array.from({ length: count }, (_, i) => {
    const n = i === 0 ? maxLen : 1 + Math.floor(uniform() * maxLen);
    return Float32Array.from({ length: n * audioDim }, () => rand());
  });
  return (idx) => {
    const Ta = Math.max(...idx.map((i) => rows[i]!.length / audioDim));
    const audio = new Float32Array(idx.length * Ta * audioDim);
    const audioMask = new Float32Array(idx.length * Ta);
    idx.forEach((i, b) => {
      audio.set(rows[i]!, b * Ta * audioDim);
      audioMask.fill(1, b * Ta, b * Ta + rows[i]!.length / audioDim);
    });
    return { audio, audioMask };
  };
}

/** Seeded token rows for a check without texts: ids in [0, vocab), lengths in [1, maxLen] (the first at maxLen). */
export function randomTokenRows(vocab: number, maxLen: number, count: number, seed = 1): number[][] {
  const u = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const n = i === 0 ? maxLen : 1 + Math.floor(u() * maxLen);
    return Array.from({ length: n }, () => Math.floor(u() * vocab));
  });
}

/**
 * Seeded N(0, 1) features with lengths drawn in [1, max] (each batch also has one utterance at both maxima), for a
 * check without a feature cache.
 */
export function randomFeatureBatches(
  c: { textDim: number; audioDim: number; maxTextLen: number; maxAudioLen: number },
  batches: number,
  batchSize: number,
  seed = 1,
): FeatureBatch[] {
  const rand = gaussian(mulberry32(seed));
  const uniform = mulberry32(seed + 1);
  const out: FeatureBatch[] = [];
  for (let i = 0; i < batches; i++) {
    const tl = Array.from({ length: batchSize }, (_, b) => (b === 0 ? c.maxTextLen : 1 + Math.floor(uniform() * c.maxTextLen)));
    const al = Array.from({ length: batchSize }, (_, b) => (b === 0 ? c.maxAudioLen : 1 + Math.floor(uniform() * c.maxAudioLen)));
    const Tt = Math.max(...tl);
    const Ta = Math.max(...al);
    const text = new Float32Array(batchSize * Tt * c.textDim);
    const textMask = new Float32Array(batchSize * Tt);
    const audio = new Float32Array(batchSize * Ta * c.audioDim);
    const audioMask = new Float32Array(batchSize * Ta);
    for (let b = 0; b < batchSize; b++) {
      for (let j = 0; j < tl[b]! * c.textDim; j++) text[b * Tt * c.textDim + j] = rand();
      for (let j = 0; j < al[b]! * c.audioDim; j++) audio[b * Ta * c.audioDim + j] = rand();
      textMask.fill(1, b * Tt, b * Tt + tl[b]!);
      audioMask.fill(1, b * Ta, b * Ta + al[b]!);
    }
    out.push({
      ids: tl.map((_, b) => `random-${i}-${b}`),
      labels: new Int32Array(batchSize).fill(-1),
      text,
      textMask,
      Tt,
      audio,
      audioMask,
      Ta,
    });
  }
  return out;
}
