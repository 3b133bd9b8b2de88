// Running speaker statistics where a trained --speaker-norm checkpoint is used: the float64 sums of one speaker's (one
// recording's, one demo-page session's) raw tokens so far, their mean and std as training computes a speaker's
// (input-norm.ts speakerTokenStats), and the rule that standardizes a streamed utterance with them. Used by predict
// (--manifest speakers), analyze (a recording's segments) and the demo page (a session): no Node import, so the page
// bundles it.

import type { FeatureBatch } from '../features.ts';
import { standardizeRow, standardizeTokens, type NormStats, type SpeakerFallback } from './input-norm.ts';

/**
 * A speaker (or recording) needs this many clips for statistics of its own; with fewer it gets the train statistics
 * only: one clip's own mean and std would take out the very offsets that carry its emotion.
 */
export const SPEAKER_MIN_CLIPS = 2;

/**
 * Running float64 sums of the kept tokens of one speaker's clips, per modality, turned into mean and population std
 * as --speaker-norm computes them in training (fusion/input-norm.ts speakerTokenStats: a modality without tokens gets
 * mean 0, std 1; a dimension with (near) zero variance keeps std 1). It serializes (toJSON / fromJSON) so a resumed
 * analyze continues with the same sums.
 */
export class SpeakerSums {
  clips = 0;
  private readonly n = { text: 0, audio: 0 };
  private readonly s: { text: Float64Array; audio: Float64Array };
  private readonly ss: { text: Float64Array; audio: Float64Array };
  constructor(
    readonly textDim: number,
    readonly audioDim: number,
  ) {
    this.s = { text: new Float64Array(textDim), audio: new Float64Array(audioDim) };
    this.ss = { text: new Float64Array(textDim), audio: new Float64Array(audioDim) };
  }

  /** Adds row r of an unpadded batch (text [B, Tt, Ct], audio [B, Ta, Ca] with their masks): one clip. */
  add(b: FeatureBatch, r: number): void {
    this.clips += 1;
    for (const [m, x, mask, T, C] of [
      ['text', b.text, b.textMask, b.Tt, this.textDim],
      ['audio', b.audio, b.audioMask, b.Ta, this.audioDim],
    ] as const) {
      const [s, ss] = [this.s[m], this.ss[m]];
      for (let t = 0; t < T; t++) {
        if (!(mask[r * T + t]! > 0)) continue;
        this.n[m] += 1;
        const base = (r * T + t) * C;
        for (let c = 0; c < C; c++) {
          const v = x[base + c]!;
          s[c]! += v;
          ss[c]! += v * v;
        }
      }
    }
  }

  stats(m: 'text' | 'audio'): NormStats {
    const C = m === 'text' ? this.textDim : this.audioDim;
    const mean = new Float32Array(C);
    const std = new Float32Array(C).fill(1);
    const n = this.n[m];
    if (n === 0) return { mean, std };
    for (let c = 0; c < C; c++) {
      const mu = this.s[m][c]! / n;
      const v = Math.max(0, this.ss[m][c]! / n - mu * mu);
      mean[c] = mu;
      if (v > 1e-12 * Math.max(1, mu * mu)) std[c] = Math.sqrt(v);
    }
    return { mean, std };
  }

  /** Row r of `b` standardized in place with these statistics (padding stays 0). */
  standardize(b: FeatureBatch, r: number): void {
    const rows = [
      { m: 'text' as const, x: b.text, mask: b.textMask, T: b.Tt, C: this.textDim },
      { m: 'audio' as const, x: b.audio, mask: b.audioMask, T: b.Ta, C: this.audioDim },
    ];
    for (const { m, x, mask, T, C } of rows) {
      const row = x.subarray(r * T * C, (r + 1) * T * C); // row r: [T, C]
      x.set(standardizeTokens(row, mask.subarray(r * T, (r + 1) * T), 1, T, C, this.stats(m)), r * T * C);
    }
  }

  toJSON(): { clips: number; n: { text: number; audio: number }; s: number[][]; ss: number[][] } {
    return {
      clips: this.clips,
      n: { ...this.n },
      s: [[...this.s.text], [...this.s.audio]],
      ss: [[...this.ss.text], [...this.ss.audio]],
    };
  }

  static fromJSON(j: ReturnType<SpeakerSums['toJSON']>): SpeakerSums {
    const out = new SpeakerSums(j.s[0]!.length, j.s[1]!.length);
    out.clips = j.clips;
    Object.assign(out.n, j.n);
    out.s.text.set(j.s[0]!);
    out.s.audio.set(j.s[1]!);
    out.ss.text.set(j.ss[0]!);
    out.ss.audio.set(j.ss[1]!);
    return out;
  }
}

/**
 * Row r of `fb` (raw tokens) joins `running` (a recording's or a session's clips so far, one speaker assumed) and is
 * standardized with its statistics, itself included ('recording'); while `running` has fewer than SPEAKER_MIN_CLIPS
 * clips, with `fallback` instead, the pooled train statistics when the checkpoint has them ('train'). Analyze's
 * segments (Predictor.predict with `recording`) and the demo page's session.
 */
export function standardizeRunning(
  running: SpeakerSums,
  fb: FeatureBatch,
  r: number,
  fallback: SpeakerFallback | null,
): 'recording' | 'train' {
  running.add(fb, r); // raw tokens; row r is standardized after it is counted
  if (running.clips < SPEAKER_MIN_CLIPS) {
    if (fallback) standardizeRow(fb, r, fallback);
    return 'train';
  }
  running.standardize(fb, r);
  return 'recording';
}
