// Shared by the analyze tests (test/model/analyze*.test.ts, test/cli/analyze.test.ts): a small checkpoint on the
// encoders predict can run without networks (hash text, logmel audio), trained a few AdamW steps on seeded features
// so its weights are not at their init; and the boundary score of segments against an assembled recording's truth.

import { CpuBackend, FusionModel, HASH_DIM, LOGMEL_BINS, saveCheckpoint, type FusionConfig } from '@emofuse/model';
import { randomF32 } from '@emofuse/kernels';
import type { RecordingTruth } from '@emofuse/model';

export const ANALYZE_CLASSES = ['neutral', 'happy', 'sad', 'angry'];

export async function smallCheckpoint(file: string, seed = 3): Promise<string> {
  const config: FusionConfig = {
    fusion: 'cross-self',
    textDim: HASH_DIM,
    audioDim: 2 * LOGMEL_BINS,
    maxTextLen: 24,
    maxAudioLen: 96,
    width: 16,
    heads: 2,
    layers: 1,
    ffnMult: 2,
    dropout: 0,
    numClasses: ANALYZE_CLASSES.length,
    seed,
  };
  const model = FusionModel.create(new CpuBackend('f32'), config);
  const B = 4;
  const adamw = { lr: 3e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
  for (let s = 0; s < 3; s++) {
    const inputs = {
      text: randomF32(B * config.maxTextLen * config.textDim, seed + 10 * s),
      textMask: new Float32Array(B * config.maxTextLen).fill(1),
      audio: randomF32(B * config.maxAudioLen * config.audioDim, seed + 10 * s + 1),
      audioMask: new Float32Array(B * config.maxAudioLen).fill(1),
      labels: [0, 1, 2, 3],
    };
    await model.trainStep(inputs, [1, 1, 1, 1], adamw);
  }
  await saveCheckpoint(model, file, {
    format: 1,
    config,
    classNames: ANALYZE_CLASSES,
    step: model.step,
    textEncoder: 'hash',
    audioEncoder: 'logmel',
    metrics: {},
    train: {},
  });
  return file;
}

/**
 * Share of the truth's clip boundaries (speechStart and speechEnd of every clip the VAD hears alone) within `tol` s of a segment boundary.
 */
export function boundariesFound(
  truth: RecordingTruth,
  segments: readonly { start: number; end: number }[],
  tol = 0.3,
  only: (source: string) => boolean = () => true,
): { found: number; total: number; missed: string[] } {
  const ours = segments.flatMap((s) => [s.start, s.end]);
  const missed: string[] = [];
  let found = 0;
  let total = 0;
  for (const c of truth.clips) {
    if (c.speechStart === null || c.speechEnd === null || !only(c.source)) continue;
    for (const [what, t] of [
      ['start', c.speechStart],
      ['end', c.speechEnd],
    ] as const) {
      total++;
      if (ours.some((x) => Math.abs(x - t) <= tol)) found++;
      else missed.push(`${c.source} ${what} ${t.toFixed(2)} s`);
    }
  }
  return { found, total, missed };
}
