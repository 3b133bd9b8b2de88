// Tiny fusion models and seeded padded batches for the model tests.

import { expect } from 'vitest';
import { randomF32 } from '@emofuse/kernels';
import type { AdamwSettings, FusionConfig, FusionModel, FusionVariant, StepInputs } from '@emofuse/model';

export function tinyConfig(fusion: FusionVariant, over: Partial<FusionConfig> = {}): FusionConfig {
  return {
    fusion,
    textDim: 5,
    audioDim: 6,
    maxTextLen: 3,
    maxAudioLen: 4,
    width: 8,
    heads: 2,
    layers: 1,
    ffnMult: 2,
    dropout: 0.25,
    numClasses: 3,
    seed: 7,
    ...over,
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

/** The same batch with row 0's audio and row 1's text absent (zero tokens, as a text-only or audio-only corpus gives). */
export function withMissingModalities(inp: StepInputs): StepInputs {
  const B = inp.labels.length;
  const [Tt, Ta] = [inp.textMask.length / B, inp.audioMask.length / B];
  const [Ct, Ca] = [inp.text.length / (B * Tt), inp.audio.length / (B * Ta)];
  const out = {
    ...inp,
    text: inp.text.slice(),
    textMask: inp.textMask.slice(),
    audio: inp.audio.slice(),
    audioMask: inp.audioMask.slice(),
  };
  out.audio.fill(0, 0, Ta * Ca);
  out.audioMask.fill(0, 0, Ta);
  out.text.fill(0, Tt * Ct, 2 * Tt * Ct);
  out.textMask.fill(0, Tt, 2 * Tt);
  return out;
}

/**
 * The backends' agreement rule (backends.test.ts explains the tolerances): `model` and `cpuModel` (the same
 * config, the f32 cpu backend) train `steps` AdamW steps on the same seeded batches; each step's loss agrees within
 * `lossRtol`, then every parameter within `paramAtol` and their mean absolute difference within `meanAtol`.
 * Returns the worst parameter difference and the mean, for the log.
 */
export async function expectTrainsLikeCpu(
  label: string,
  model: FusionModel,
  cpuModel: FusionModel,
  adamw: AdamwSettings,
  t: { steps: number; lossRtol: number; paramAtol: number; meanAtol: number; missingModalities?: boolean },
): Promise<{ worst: number; worstName: string; mean: number }> {
  const weights = [1, 1.5, 0.75];
  for (let s = 0; s < t.steps; s++) {
    const batch = tinyInputs(model.config, 4, 100 + s);
    const inputs = t.missingModalities ? withMissingModalities(batch) : batch;
    const lm = await model.readLoss(await model.trainStep(inputs, weights, adamw));
    const lc = await cpuModel.readLoss(await cpuModel.trainStep(inputs, weights, adamw));
    expect(Number.isFinite(lm)).toBe(true);
    expect(Math.abs(lm - lc), `step ${s}: ${label} loss ${lm} vs cpu ${lc}`).toBeLessThanOrEqual(t.lossRtol * Math.abs(lc));
  }
  const sm = await model.readState();
  const sc = await cpuModel.readState();
  let worst = { name: '', i: 0, g: 0, c: 0, err: 0 };
  let sum = 0;
  let n = 0;
  let moved = 0;
  for (const p of cpuModel.params) {
    const g = sm.get(p.name)!.value;
    const c = sc.get(p.name)!.value;
    for (let i = 0; i < c.length; i++) {
      const err = Math.abs(g[i]! - c[i]!);
      if (!(err <= worst.err)) worst = { name: p.name, i, g: g[i]!, c: c[i]!, err };
      sum += err;
      n++;
    }
    moved += sc.get(p.name)!.m.reduce((a, x) => a + Math.abs(x), 0);
  }
  expect(worst.err, `worst ${worst.name}[${worst.i}]: ${label} ${worst.g} cpu ${worst.c}`).toBeLessThanOrEqual(t.paramAtol);
  expect(sum / n, `mean |${label} - cpu| over all parameters`).toBeLessThanOrEqual(t.meanAtol);
  expect(moved).toBeGreaterThan(0); // training happened
  return { worst: worst.err, worstName: worst.name, mean: sum / n };
}
