// Input standardization: every input dimension is shifted and scaled by statistics of the training split,
// x' = (x - mean) / std, so that no feature's scale (log-mel energies in the tens, Whisper states near 1, hash
// embeddings near 1) decides how fast its weights learn or how hard weight decay pulls on them.
//
// It runs on the host, inside FusionModel.setInputs, on the batch arrays just before they are written to the
// backend: every path into the model (train, eval, ablate, predict, the demo page) goes through setInputs, so one
// place applies it, on every backend, with no extra op. The statistics belong to the model: the checkpoint holds
// them as F32 tensors `norm.<name>.mean` / `norm.<name>.std` ([dim] each, train/checkpoint.ts), and an exported
// graph applies the same two ops (Sub, Div) with them as initializers.
//
//   norm.text   [Ct]  over every kept text token of the train split (tokens beyond the model's Tt not counted)
//   norm.audio  [Ca]  likewise over audio tokens
//   norm.pooled [P]   the `linear` head, and the linear skip of the other heads: over the pooled vectors (mean + std
//                     of the standardized tokens of each pooled modality: P = 2 Ct + 2 Ca for the linear head, the
//                     read modalities' S for the skip), so that the classifier reads standardized features too
//
// A dimension with (near) zero variance keeps std 1 (as scikit-learn's StandardScaler does). Padding stays 0.
// A pooled dimension's std is floored at POOLED_MIN_STD: its inputs are standardized tokens (std 1), so a pooled
// mean or std that barely moves across the train utterances (RAVDESS's two sentences make most text dimensions
// two-valued, some with spreads of 1e-3) is near constant there, and dividing by that spread would blow another
// corpus's values up a thousandfold (leave-one-corpus-out, linear head: below chance) rather than standardize them.

import { mulberry32 } from '@emofuse/kernels';
import { DataError } from '../errors.ts';
import type { FeatureBatch, FeatureSplit } from '../features.ts';

export interface NormStats {
  mean: Float32Array; // [dim]
  std: Float32Array; // [dim]
}

export interface InputNorm {
  text?: NormStats;
  audio?: NormStats;
  pooled?: NormStats;
}

/** The least std norm.pooled divides by (in units of the standardized tokens the pooled vector is built from). */
export const POOLED_MIN_STD = 0.1;

export const INPUT_NORM_NAMES = ['text', 'audio', 'pooled'] as const;
export type InputNormName = (typeof INPUT_NORM_NAMES)[number];

/** Running float64 sums of one vector-valued variable, turned into mean and std (population) at the end. */
class Moments {
  n = 0;
  readonly s: Float64Array;
  readonly ss: Float64Array;
  constructor(readonly dim: number) {
    this.s = new Float64Array(dim);
    this.ss = new Float64Array(dim);
  }
  add(x: ArrayLike<number>, off: number): void {
    for (let c = 0; c < this.dim; c++) {
      const v = x[off + c]!;
      this.s[c]! += v;
      this.ss[c]! += v * v;
    }
    this.n += 1;
  }
  /** `minStd`: a non-constant dimension's std is at least this (0: as measured). */
  stats(minStd = 0): NormStats {
    const mean = new Float32Array(this.dim);
    const std = new Float32Array(this.dim).fill(1);
    if (this.n === 0) return { mean, std };
    for (let c = 0; c < this.dim; c++) {
      const m = this.s[c]! / this.n;
      const v = Math.max(0, this.ss[c]! / this.n - m * m);
      mean[c] = m;
      if (v > 1e-12 * Math.max(1, m * m)) std[c] = Math.max(minStd, Math.sqrt(v));
    }
    return { mean, std };
  }
}

/** x' [B, T, C] = (x - mean) / std on kept tokens (mask 1); padded tokens stay 0. A new array. */
export function standardizeTokens(x: Float32Array, mask: Float32Array, B: number, T: number, C: number, s: NormStats): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < B * T; r++) {
    if (!(mask[r]! > 0)) continue;
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c]! - s.mean[c]!) / s.std[c]!;
  }
  return out;
}

/**
 * The linear head's features: per row b, the mean and the (population) std over the kept tokens of x [B, T, C],
 * written to out[b * stride + off ...] as [mean (C), std (C)]. A row with no kept token gets zeros.
 */
export function poolMeanStd(
  x: Float32Array,
  mask: Float32Array,
  B: number,
  T: number,
  C: number,
  out: Float32Array,
  stride: number,
  off: number,
): void {
  const s = new Float64Array(C);
  const ss = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    s.fill(0);
    ss.fill(0);
    let n = 0;
    for (let t = 0; t < T; t++) {
      if (!(mask[b * T + t]! > 0)) continue;
      n += 1;
      const base = (b * T + t) * C;
      for (let c = 0; c < C; c++) {
        const v = x[base + c]!;
        s[c]! += v;
        ss[c]! += v * v;
      }
    }
    const o = b * stride + off;
    for (let c = 0; c < C; c++) {
      const m = n ? s[c]! / n : 0;
      out[o + c] = m;
      out[o + C + c] = n ? Math.sqrt(Math.max(0, ss[c]! / n - m * m)) : 0;
    }
  }
}

/** Whether row b of a [B, T] mask keeps any token. */
export function hasTokens(mask: ArrayLike<number>, b: number, T: number): boolean {
  for (let t = 0; t < T; t++) if (mask[b * T + t]! > 0) return true;
  return false;
}

/** y = (x - mean) / std along the last axis (dim = the stats' length), in place. */
export function standardizeRows(x: Float32Array, s: NormStats): void {
  const C = s.mean.length;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - s.mean[i % C]!) / s.std[i % C]!;
}

/** What the model's first layer reads from one batch: standardized tokens (and the linear head's pooled vector). */
export interface NormalizedInputs {
  text: Float32Array; // [B, Tt, Ct]
  audio: Float32Array; // [B, Ta, Ca]
  /** [B, 2 Ct + 2 Ca], when asked for. */
  pooled?: Float32Array;
}

/** Which modalities' mean + std go into the pooled vector (text first); `true`: both (the linear head's). */
export type PoolModalities = boolean | { text: boolean; audio: boolean };
const poolWhich = (p: PoolModalities | undefined) => (p === true ? { text: true, audio: true } : p || { text: false, audio: false });

/**
 * Applies `norm` to one batch (text [B, Tt, Ct] with its mask, audio [B, Ta, Ca] with its mask) and, when `pool`
 * names modalities, builds the pooled vector [mean_t, std_t][mean_a, std_a] of those (the linear head: both; the
 * skip: the ones its variant reads), standardized by norm.pooled when present.
 */
export function normalizeInputs(
  inp: { text: Float32Array; textMask: Float32Array; audio: Float32Array; audioMask: Float32Array },
  dims: { B: number; Tt: number; Ta: number; Ct: number; Ca: number },
  norm: InputNorm | null,
  pool?: PoolModalities,
): NormalizedInputs {
  const { B, Tt, Ta, Ct, Ca } = dims;
  const text = norm?.text ? standardizeTokens(inp.text, inp.textMask, B, Tt, Ct, norm.text) : inp.text;
  const audio = norm?.audio ? standardizeTokens(inp.audio, inp.audioMask, B, Ta, Ca, norm.audio) : inp.audio;
  const w = poolWhich(pool);
  if (!(w.text || w.audio)) return { text, audio };
  const P = (w.text ? 2 * Ct : 0) + (w.audio ? 2 * Ca : 0);
  const pooled = new Float32Array(B * P); // [B, P]
  if (w.text) poolMeanStd(text, inp.textMask, B, Tt, Ct, pooled, P, 0);
  if (w.audio) poolMeanStd(audio, inp.audioMask, B, Ta, Ca, pooled, P, w.text ? 2 * Ct : 0);
  if (norm?.pooled) standardizeRows(pooled, norm.pooled);
  // A row without tokens of a modality (an absent modality) reads zeros there after standardization too: the
  // classifier then gets nothing from that modality, rather than minus the train mean over the train std.
  const parts = [
    { on: w.text, T: Tt, mask: inp.textMask, off: 0, width: 2 * Ct },
    { on: w.audio, T: Ta, mask: inp.audioMask, off: w.text ? 2 * Ct : 0, width: 2 * Ca },
  ];
  for (const { on, T, mask, off, width } of parts) {
    if (!on || !norm?.pooled) continue;
    for (let b = 0; b < B; b++) if (!hasTokens(mask, b, T)) pooled.fill(0, b * P + off, b * P + off + width);
  }
  return { text, audio, pooled };
}

/**
 * The statistics of a training split for a model of lengths Tt / Ta: token stats of the modalities it reads, and
 * (`pooled`) the stats of the pooled vector of those modalities, computed after token standardization.
 */
export function computeInputNorm(
  split: FeatureSplit,
  m: { Tt: number; Ta: number; Ct: number; Ca: number; text: boolean; audio: boolean; pooled?: PoolModalities },
): InputNorm {
  const chunk = 64;
  const tm = new Moments(m.Ct);
  const am = new Moments(m.Ca);
  const each = (f: (b: ReturnType<FeatureSplit['batch']>, n: number) => void) => {
    for (let i = 0; i < split.size; i += chunk) {
      const idx = Array.from({ length: Math.min(chunk, split.size - i) }, (_, j) => i + j);
      f(split.batch(idx, { rows: idx.length, Tt: m.Tt, Ta: m.Ta }), idx.length);
    }
  };
  each((b, n) => {
    for (let r = 0; r < n * m.Tt; r++) if (m.text && b.textMask[r]! > 0) tm.add(b.text, r * m.Ct);
    for (let r = 0; r < n * m.Ta; r++) if (m.audio && b.audioMask[r]! > 0) am.add(b.audio, r * m.Ca);
  });
  const norm: InputNorm = {};
  if (m.text) norm.text = tm.stats();
  if (m.audio) norm.audio = am.stats();
  const w = poolWhich(m.pooled);
  if (w.text || w.audio) {
    // Each modality's part over the rows that have tokens of it (with every modality present: every row).
    const P = (w.text ? 2 * m.Ct : 0) + (w.audio ? 2 * m.Ca : 0);
    const parts = [
      ...(w.text ? [{ mask: 'textMask' as const, T: m.Tt, off: 0, mom: new Moments(2 * m.Ct) }] : []),
      ...(w.audio ? [{ mask: 'audioMask' as const, T: m.Ta, off: w.text ? 2 * m.Ct : 0, mom: new Moments(2 * m.Ca) }] : []),
    ];
    each((b, n) => {
      const { pooled } = normalizeInputs(b, { B: n, Tt: m.Tt, Ta: m.Ta, Ct: m.Ct, Ca: m.Ca }, norm, m.pooled);
      for (const part of parts) for (let r = 0; r < n; r++) if (hasTokens(b[part.mask], r, part.T)) part.mom.add(pooled!, r * P + part.off);
    });
    const mean = new Float32Array(P);
    const std = new Float32Array(P);
    for (const part of parts) {
      const st = part.mom.stats(POOLED_MIN_STD);
      mean.set(st.mean, part.off);
      std.set(st.std, part.off);
    }
    norm.pooled = { mean, std };
  }
  return norm;
}

// ------------------------------------------------------------------------------------------ speaker-level standardization
//
// --speaker-norm: before the train statistics above, each utterance's tokens are standardized with its speaker's
// own statistics (every kept token of that speaker's utterances in the set, per modality), so that a voice's (or a
// speaker's wording's) offset and scale are taken out; an utterance without a known speaker keeps its tokens and
// gets the train statistics only. A data transform applied where a feature set is read (train, eval, ablate), not
// part of the model: the checkpoint records the setting, and export / the browser are unaffected.
//
// The lone-clip fallback: a speaker-standardized model's own input statistics are those of speaker-standardized
// tokens (about mean 0, std 1), so an utterance with no speaker statistics, passed on raw, reaches the model on another
// scale altogether (13.3% on lone RAVDESS dev clips). A run with --speaker-norm therefore also keeps the pooled *raw*
// statistics of every train token, per modality (`SpeakerFallback`: what "an average speaker" looks like), and every
// utterance without statistics of its own (no speaker; a lone clip in predict; analyze's first segment) is standardized
// with those instead. --speaker-norm-mix p trains for it: each epoch, each train utterance takes the pooled statistics
// instead of its speaker's with probability p (`speakerNormMixDraw`, seeded by (seed, epoch, utterance)).

/** One speaker's token statistics per modality (a modality the speaker has no tokens of: mean 0, std 1). */
export interface SpeakerStats {
  text: NormStats;
  audio: NormStats;
  utterances: number;
}

/** The statistics of every speaker named in `speakers` ([size] per split; '' or absent: unknown) over `splits`. */
export function speakerTokenStats(
  parts: readonly { split: FeatureSplit; speakers: readonly string[] }[],
  Ct: number,
  Ca: number,
): Map<string, SpeakerStats> {
  const acc = new Map<string, { t: Moments; a: Moments; n: number }>();
  const chunk = 64;
  for (const { split, speakers } of parts) {
    for (let i = 0; i < split.size; i += chunk) {
      const idx = Array.from({ length: Math.min(chunk, split.size - i) }, (_, j) => i + j);
      const b = split.batch(idx); // unpadded: [n, Tt, Ct], [n, Ta, Ca]
      idx.forEach((u, r) => {
        const s = speakers[u];
        if (!s) return;
        const m = acc.get(s) ?? { t: new Moments(Ct), a: new Moments(Ca), n: 0 };
        acc.set(s, m);
        m.n += 1;
        for (let t = 0; t < b.Tt; t++) if (b.textMask[r * b.Tt + t]! > 0) m.t.add(b.text, (r * b.Tt + t) * Ct);
        for (let t = 0; t < b.Ta; t++) if (b.audioMask[r * b.Ta + t]! > 0) m.a.add(b.audio, (r * b.Ta + t) * Ca);
      });
    }
  }
  return new Map([...acc].map(([s, m]) => [s, { text: m.t.stats(), audio: m.a.stats(), utterances: m.n }]));
}

/**
 * `split` with each utterance of a speaker in `stats` standardized by that speaker's statistics; the others by
 * `o.fallback` when given (as they are when not). `o.pooled(u)` true: utterance u takes `o.fallback` even when its
 * speaker is known (--speaker-norm-mix).
 */
export function speakerStandardizedSplit(
  split: FeatureSplit,
  speakers: readonly string[],
  stats: ReadonlyMap<string, SpeakerStats>,
  o: { fallback?: SpeakerFallback | null; pooled?: (u: number) => boolean } = {},
): FeatureSplit {
  return {
    ...split,
    batch(indices, shape) {
      const b = split.batch(indices, shape);
      const B = b.labels.length;
      const Ct = b.text.length / (B * b.Tt);
      const Ca = b.audio.length / (B * b.Ta);
      indices.forEach((u, r) => {
        const own = o.fallback && o.pooled?.(u) ? undefined : stats.get(speakers[u] ?? '');
        const st = own ?? o.fallback;
        if (!st) return;
        const text = standardizeTokens(
          b.text.subarray(r * b.Tt * Ct, (r + 1) * b.Tt * Ct),
          b.textMask.subarray(r * b.Tt, (r + 1) * b.Tt),
          1,
          b.Tt,
          Ct,
          st.text,
        );
        const audio = standardizeTokens(
          b.audio.subarray(r * b.Ta * Ca, (r + 1) * b.Ta * Ca),
          b.audioMask.subarray(r * b.Ta, (r + 1) * b.Ta),
          1,
          b.Ta,
          Ca,
          st.audio,
        );
        b.text.set(text, r * b.Tt * Ct); // row r: [Tt, Ct]
        b.audio.set(audio, r * b.Ta * Ca); // row r: [Ta, Ca]
      });
      return b;
    },
  };
}

/**
 * The pooled raw train statistics per modality of a --speaker-norm run: every kept train token, one "average speaker"
 * (a modality without tokens: mean 0, std 1). Kept in the checkpoint (train/trainer.ts, `speakerFallback`).
 */
export interface SpeakerFallback {
  text: NormStats;
  audio: NormStats;
}

/** The pooled statistics of every kept token of `split` (raw: before any standardization). */
export function pooledTokenStats(split: FeatureSplit, Ct: number, Ca: number): SpeakerFallback {
  const one = speakerTokenStats([{ split, speakers: new Array<string>(split.size).fill('*') }], Ct, Ca).get('*');
  if (one) return { text: one.text, audio: one.audio };
  return {
    text: { mean: new Float32Array(Ct), std: new Float32Array(Ct).fill(1) },
    audio: { mean: new Float32Array(Ca), std: new Float32Array(Ca).fill(1) },
  };
}

/** The fallback as it is stored in a checkpoint's metadata (plain arrays; float32 values survive JSON exactly). */
export interface SpeakerFallbackJson {
  text: { mean: number[]; std: number[] };
  audio: { mean: number[]; std: number[] };
}

export function speakerFallbackToJson(f: SpeakerFallback): SpeakerFallbackJson {
  const j = (s: NormStats) => ({ mean: [...s.mean], std: [...s.std] });
  return { text: j(f.text), audio: j(f.audio) };
}

/**
 * The fallback read back from a checkpoint's metadata; null when absent (a checkpoint from before the fallback: such an
 * utterance keeps its raw tokens, as before). `dims`: the model's text and audio widths; anything else is refused.
 */
export function speakerFallbackFromJson(j: unknown, dims: { text: number; audio: number }, where: string): SpeakerFallback | null {
  if (j === undefined || j === null) return null;
  const stats = (m: 'text' | 'audio'): NormStats => {
    const s = (j as Record<string, { mean?: unknown; std?: unknown } | undefined>)[m];
    const ok = (a: unknown): a is number[] =>
      Array.isArray(a) && a.length === dims[m] && a.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!s || !ok(s.mean) || !ok(s.std) || !s.std.every((v) => v > 0))
      throw new DataError(`${where}: speakerFallback.${m} must hold ${dims[m]} finite means and ${dims[m]} stds > 0`);
    return { mean: Float32Array.from(s.mean), std: Float32Array.from(s.std) };
  };
  return { text: stats('text'), audio: stats('audio') };
}

/** The checkpoint was trained with --speaker-norm (its `meta.train.flags`): every reader of a checkpoint asks this. */
export function trainedWithSpeakerNorm(meta: { train?: Record<string, unknown> }): boolean {
  return (meta.train?.flags as { speakerNorm?: unknown } | undefined)?.speakerNorm === true;
}

/**
 * What a checkpoint standardizes an utterance without statistics of its own with: its pooled raw train statistics when
 * it was trained with --speaker-norm and has them (`meta.train.speakerFallback`), else null (its inputs go to the
 * model as they are). For every reader of a checkpoint's meta: predict, eval, the demo page.
 */
export function checkpointSpeakerFallback(
  meta: { train?: Record<string, unknown>; config: { textDim: number; audioDim: number } },
  where: string,
): SpeakerFallback | null {
  if (!trainedWithSpeakerNorm(meta)) return null;
  return speakerFallbackFromJson(meta.train?.speakerFallback, { text: meta.config.textDim, audio: meta.config.audioDim }, where);
}

/**
 * `norm` with a --speaker-norm checkpoint's lone-utterance fallback folded in, for the ONNX export: the graph then takes
 * raw features, as a lone clip has them: ((x - m_f) / s_f - m_n) / s_n = (x - (m_f + m_n s_f)) / (s_f s_n) per column;
 * a modality the model reads unstandardized gets the fallback alone. `pooled` is unchanged (it reads the same tokens).
 */
export function foldSpeakerFallback(norm: InputNorm | null, f: SpeakerFallback): InputNorm {
  const fold = (n: NormStats | undefined, fb: NormStats): NormStats =>
    n
      ? { mean: fb.mean.map((m, c) => m + n.mean[c]! * fb.std[c]!), std: fb.std.map((sd, c) => sd * n.std[c]!) }
      : { mean: fb.mean.slice(), std: fb.std.slice() };
  return { ...(norm ?? {}), text: fold(norm?.text, f.text), audio: fold(norm?.audio, f.audio) };
}

/** Row r of an unpadded or padded batch (text [B, Tt, Ct], audio [B, Ta, Ca], with masks) standardized in place by `st`. */
export function standardizeRow(b: FeatureBatch, r: number, st: { text: NormStats; audio: NormStats }): void {
  const B = b.labels.length;
  const Ct = st.text.mean.length;
  const Ca = st.audio.mean.length;
  if (B * b.Tt * Ct === b.text.length) {
    const rows = b.text.subarray(r * b.Tt * Ct, (r + 1) * b.Tt * Ct); // row r: [Tt, Ct]
    rows.set(standardizeTokens(rows, b.textMask.subarray(r * b.Tt, (r + 1) * b.Tt), 1, b.Tt, Ct, st.text));
  }
  if (B * b.Ta * Ca === b.audio.length) {
    const rows = b.audio.subarray(r * b.Ta * Ca, (r + 1) * b.Ta * Ca); // row r: [Ta, Ca]
    rows.set(standardizeTokens(rows, b.audioMask.subarray(r * b.Ta, (r + 1) * b.Ta), 1, b.Ta, Ca, st.audio));
  }
}

/**
 * --speaker-norm-mix: a uniform [0, 1) draw for train utterance u in epoch `epoch` of a run seeded `seed`; the utterance
 * takes the pooled statistics instead of its speaker's when the draw is below p. A function of (seed, epoch, u) only,
 * so a resumed run draws the same.
 */
export function speakerNormMixDraw(seed: number, epoch: number, u: number): number {
  return mulberry32(
    (Math.imul(seed + 1, 0x5bd1e995) ^ Math.imul(epoch + 1, 0x27d4eb2f) ^ Math.imul(u + 1, 0x165667b1) ^ 0x3c6ef372) >>> 0,
  )();
}
