// Tiny fusion models and seeded padded batches for the model tests.

import { randomF32 } from '@emofuse/kernels';
import type { FusionConfig, FusionVariant, StepInputs } from '@emofuse/model';

export function tinyConfig(fusion: FusionVariant, over: Partial<FusionConfig> = {}): FusionConfig {
  return {
    fusion, textDim: 5, audioDim: 6, maxTextLen: 3, maxAudioLen: 4, width: 8, heads: 2, layers: 1, ffnMult: 2,
    dropout: 0.25, numClasses: 3, seed: 7, ...over,
  };
}

/** A padded batch: row b keeps lengths text [3, 1, 2, ...], audio [4, 2, 3, ...]; labels in [0, K_cls). */
export function tinyInputs(c: FusionConfig, B: number, seed: number, labels?: number[]): StepInputs {
  const [Tt, Ta] = [c.maxTextLen, c.maxAudioLen];
  const text = randomF32(B * Tt * c.textDim, seed);
  const audio = randomF32(B * Ta * c.audioDim, seed + 1);
  const textMask = new Float32Array(B * Tt);
  const audioMask = new Float32Array(B * Ta);
  for (let b = 0; b < B; b++) {
    const lt = 1 + ((b * 2 + Tt - 1) % Tt);
    const la = 1 + ((b * 3 + Ta - 1) % Ta);
    for (let t = 0; t < Tt; t++) {
      textMask[b * Tt + t] = t < lt ? 1 : 0;
      if (t >= lt) text.fill(0, (b * Tt + t) * c.textDim, (b * Tt + t + 1) * c.textDim);
    }
    for (let t = 0; t < Ta; t++) {
      audioMask[b * Ta + t] = t < la ? 1 : 0;
      if (t >= la) audio.fill(0, (b * Ta + t) * c.audioDim, (b * Ta + t + 1) * c.audioDim);
    }
  }
  return { text, textMask, audio, audioMask, labels: labels ?? Array.from({ length: B }, (_, b) => (b * 2 + seed) % c.numClasses) };
}
