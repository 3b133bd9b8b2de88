// The fusion classifier of "A Simple Attention-Based Mechanism for Bimodal Emotion Classification" (Elabd & Jaf,
// 2024), in one file that reads top to bottom: the variants, the config, the parameters, the forward pass, the
// backward pass, the optimizer step. Written llm.c-style against a small backend (./backend.ts), so the same code
// trains on our WGSL kernels (`wgsl`) and on their float64 CPU references (`cpu`). Every tensor line carries its shape.
//
// Every variant is the same pipeline with parts left out (its FusionSpec, resolved once at construction):
//
//   stem:  text  [B, Tt, Ct] --proj--> t0 [B, Tt, C]         audio [B, Ta, Ca] --proj + pos--> a0 [B, Ta, C]
//          (audioLayers La > 1, Whisper '@all': each audio token is [La, Ca / La], mixed first with learned softmax
//          weights, m = sum_l softmax(audio.layerMix)_l x[:, :, l] [B, Ta, Ca / La], as SUPERB's weighted layer sum)
//   cross: t1 = cross(t0 <- a0) [B, Tt, C],  a1 = cross(a0 <- t0) [B, Ta, C]
//   seq:   x0 = concat(t, a) [B, T, C] (or the one modality's tokens) --self x L--> x [B, T, C]
//   head:  pool:              mean of x over kept tokens                        -> pooled [B, C]
//          concat|mean|gate:  mean of t0 and of a0 -> merge -> gelu(linear)     -> pooled [B, C]
//          linear:            no stem; mean + std of each modality's input tokens -> pooled [B, P = 2 Ct + 2 Ca]
//   classifier: dropout(pooled) -> logits [B, K_cls]
//   skip (linearSkip, every head but linear): logits += stats [B, S] @ W_skip, where stats are the linear head's
//          features (mean + std of each read modality's standardized input tokens, standardized again), so every
//          attention variant contains the linear probe as a sub-model and only has to learn what it adds.
//
// Inputs are standardized with training-split statistics on the host as a batch is written (setInputs,
// ./input-norm.ts); the linear head's pooled vector and the skip's stats are built there too (their inputs are
// constants: no backward).
// Inside the attention blocks, `blockDropout` drops the attention and feed-forward outputs before each residual add.
//
// Dimensions: B batch, Tt / Ta text / audio tokens (each batch's own padded lengths, at most maxTextLen / maxAudioLen), T the length of
// the token sequence (Tt + Ta, or one of them), Ct / Ca input widths, C model width, H heads, D = C / H,
// F = ffnMult * C, K_cls classes.
// Linear weights are stored [in, out]; every linear has a bias. The learned modality embedding of each modality
// is its projection's bias: a vector added to every token of that modality, so a separate embedding would be the
// same function with a redundant parameter.

import { mulberry32 } from '@emofuse/kernels';
import { gaussian } from '../random.ts';
import type { Backend, BTensor, DropoutOpts } from './backend.ts';
import { normalizeInputs, type InputNorm } from './input-norm.ts';

/** What a fusion variant is made of. Adding a variant = one FUSION_SPECS entry (and its README row). */
export interface FusionSpec {
  /** The modalities the model reads (each gets a stem: projection, and positions for audio). */
  text: boolean;
  audio: boolean;
  /** Cross-attention between the two modalities after the stems (needs both). */
  cross: boolean;
  /** `layers` self-attention blocks over the token sequence (pool head only). */
  self: boolean;
  /**
   * How tokens become one [B, C] vector. pool: mean over the token sequence (both modalities concatenated, or the
   * one read). concat / mean / gate: mean of each modality's stem tokens, merged by concatenation, averaging or a
   * learned sigmoid gate, then a gelu linear layer (needs both modalities). linear: no stems at all; the mean and
   * std over each modality's (standardized) input tokens, standardized again, straight into the classifier: a
   * logistic regression, the floor every other variant must beat. A modality without tokens pools to zeros, so
   * it also trains on a text-only cache.
   */
  head: 'pool' | 'concat' | 'mean' | 'gate' | 'linear';
}

export const FUSION_SPECS = {
  'cross-self': { text: true, audio: true, cross: true, self: true, head: 'pool' }, // the paper
  cross: { text: true, audio: true, cross: true, self: false, head: 'pool' },
  self: { text: true, audio: true, cross: false, self: true, head: 'pool' },
  concat: { text: true, audio: true, cross: false, self: false, head: 'concat' },
  mean: { text: true, audio: true, cross: false, self: false, head: 'mean' },
  gate: { text: true, audio: true, cross: false, self: false, head: 'gate' },
  text: { text: true, audio: false, cross: false, self: true, head: 'pool' },
  audio: { text: false, audio: true, cross: false, self: true, head: 'pool' },
  linear: { text: true, audio: true, cross: false, self: false, head: 'linear' }, // the floor (a linear probe)
} as const satisfies Record<string, FusionSpec>;
export type FusionVariant = keyof typeof FUSION_SPECS;
export const FUSION_VARIANTS = Object.keys(FUSION_SPECS) as readonly FusionVariant[];

/** The modalities every utterance must have tokens of (the linear head pools a missing modality to zeros). */
export function requiredModalities(s: FusionSpec): { text: boolean; audio: boolean } {
  return s.head === 'linear' ? { text: false, audio: false } : { text: s.text, audio: s.audio };
}

/** Everything that defines the model; saved in every checkpoint. */
export interface FusionConfig {
  /** A FUSION_SPECS key: see README "The fusion model". */
  fusion: FusionVariant;
  textDim: number; // Ct
  audioDim: number; // Ca
  maxTextLen: number; // Tt
  maxAudioLen: number; // Ta
  /** La: layers per audio token (Whisper '@all'), [La, audioDim / La] mixed by audio.layerMix (absent: 1, no mix). */
  audioLayers?: number;
  width: number; // C
  heads: number; // H
  /** Self-attention blocks (variants whose spec has `self`). */
  layers: number;
  ffnMult: number; // F = ffnMult * C
  /** Drop probability before the classifier. */
  dropout: number;
  /** Drop probability of the attention and feed-forward outputs inside every block (absent in older checkpoints: 0). */
  blockDropout?: number;
  /** The linear skip into the classifier (every head but `linear`; absent in older checkpoints: false). */
  linearSkip?: boolean;
  numClasses: number; // K_cls
  /** Seeds the initialisation and the dropout masks. */
  seed: number;
}

export const DEFAULT_FUSION: Required<
  Pick<FusionConfig, 'fusion' | 'width' | 'heads' | 'layers' | 'ffnMult' | 'dropout' | 'blockDropout' | 'linearSkip' | 'seed'>
> = {
  fusion: 'cross-self',
  width: 128, // 4-fold EmoDB speaker CV (speech features, audio variant): width 32/64/128/256 -> weighted F1 54.3/52.5/58.2/55.5
  heads: 4,
  layers: 1,
  ffnMult: 2,
  dropout: 0.1,
  blockDropout: 0,
  // 4-fold EmoDB, 6 pairs (logmel / speech / whisper x audio / cross-self): 5 up, mean +1.0 weighted F1; MELD dev (3 seeds): hash +0.4,
  // MiniLM +0.3
  linearSkip: true,
  seed: 0,
};

/** Activations read after a step (readLoss, predict, evaluation); every other activation is step scratch (Backend.scratch). */
const KEPT_ACTS = new Set(['loss', 'logits', 'losses', 'grad norm']);

/** A model setting that cannot work (the message names the setting and the rule). */
export class FusionConfigError extends Error {
  override name = 'FusionConfigError';
}

export function checkFusionConfig(c: FusionConfig): void {
  const bad = (m: string) => {
    throw new FusionConfigError(`model config: ${m}`);
  };
  if (!Object.hasOwn(FUSION_SPECS, c.fusion)) bad(`fusion must be one of ${FUSION_VARIANTS.join(', ')}, got '${c.fusion}'`);
  const s: FusionSpec = FUSION_SPECS[c.fusion];
  const both = s.text && s.audio;
  if (!(s.text || s.audio) || ((s.cross || s.head !== 'pool') && !both) || (s.self && s.head !== 'pool')) {
    bad(`FUSION_SPECS['${c.fusion}'] is inconsistent: it needs a modality; cross and the merge heads need both; self needs the pool head`);
  }
  for (const k of ['textDim', 'audioDim', 'maxTextLen', 'maxAudioLen', 'width', 'heads', 'ffnMult', 'numClasses'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (!Number.isInteger(c.layers) || c.layers < 0) bad(`layers must be an integer >= 0, got ${c.layers}`);
  const La = c.audioLayers ?? 1;
  if (!Number.isInteger(La) || La < 1 || c.audioDim % La !== 0)
    bad(`audioLayers must be a positive integer dividing audioDim ${c.audioDim}, got ${c.audioLayers}`);
  if (c.width % c.heads !== 0) bad(`width ${c.width} must be divisible by heads ${c.heads}`);
  const D = c.width / c.heads;
  if (D % 4 !== 0 || D > 128) bad(`head size width/heads = ${D} must be a multiple of 4 and at most 128 (the attention kernels' limits)`);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad(`dropout must lie in [0, 1), got ${c.dropout}`);
  const bd = c.blockDropout ?? 0;
  if (!(bd >= 0 && bd < 1)) bad(`blockDropout must lie in [0, 1), got ${c.blockDropout}`);
}

// ------------------------------------------------------------------------------------------------ parameters

export interface Param {
  name: string;
  shape: number[];
  value: BTensor;
  grad: BTensor;
  /** AdamW moments. */
  m: BTensor;
  v: BTensor;
  /** Weight decay applies to matrices only (not biases, layer-norm gains, positions). */
  decay: boolean;
}

interface Linear {
  w: Param; // [in, out]
  b: Param; // [out]
  inDim: number;
  outDim: number;
}

interface AttentionBlock {
  wq: Linear;
  wk: Linear;
  wv: Linear;
  wo: Linear;
  ln1g: Param;
  ln1b: Param;
  ff1: Linear;
  ff2: Linear;
  ln2g: Param;
  ln2b: Param;
}

// ------------------------------------------------------------------------------------------------ activations

/** What one attention block saves in the forward for its backward, and its gradient scratch. */
interface BlockActs {
  Tq: number;
  Tk: number;
  q: BTensor; // [B, Tq, C]
  k: BTensor; // [B, Tk, C]
  v: BTensor; // [B, Tk, C]
  att: BTensor; // [B, Tq, C]
  lse: BTensor; // [B, H, Tq]
  o: BTensor; // [B, Tq, C]
  r1: BTensor; // [B, Tq, C]
  h1: BTensor; // [B, Tq, C]
  mean1: BTensor; // [B * Tq]
  rstd1: BTensor; // [B * Tq]
  fpre: BTensor; // [B, Tq, F]
  f: BTensor; // [B, Tq, F]
  f2: BTensor; // [B, Tq, C]
  r2: BTensor; // [B, Tq, C]
  y: BTensor; // [B, Tq, C]  the block's output
  mean2: BTensor; // [B * Tq]
  rstd2: BTensor; // [B * Tq]
  dy: BTensor; // [B, Tq, C]  gradient of y, written by whoever consumes y
  /** blockDropout > 0: the dropped attention and feed-forward outputs, and the gradients before the dropout. */
  od?: BTensor; // [B, Tq, C]
  f2d?: BTensor; // [B, Tq, C]
  dod?: BTensor; // [B, Tq, C]
  df2?: BTensor; // [B, Tq, C]
  dr2: BTensor; // [B, Tq, C]
  df: BTensor; // [B, Tq, F]
  dfpre: BTensor; // [B, Tq, F]
  dh1: BTensor; // [B, Tq, C]
  dr1: BTensor; // [B, Tq, C]
  datt: BTensor; // [B, Tq, C]
  dq: BTensor; // [B, Tq, C]
  dk: BTensor; // [B, Tk, C]
  dv: BTensor; // [B, Tk, C]
}

/** Inputs of one step, uploaded at its start (the only host-to-device traffic of a step). */
export interface StepInputs {
  text: Float32Array; // [B, Tt, Ct]
  textMask: Float32Array; // [B, Tt]
  audio: Float32Array; // [B, Ta, Ca]
  audioMask: Float32Array; // [B, Ta]
  /** Class ids, -1 for padding rows (ignored by the loss). */
  labels: ArrayLike<number>; // [B]
}

export interface AdamwSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  maxGradNorm: number;
}

/** One modality's stem: tokens [B, T, Cin] -> h [B, T, C] (projection; + learned positions for audio). */
interface Stem {
  proj: Linear; // [Cin / La -> C]
  pos?: Param; // [T, C]
  /** audioLayers La > 1: the layer-mix logits, alpha = softmax(mix) [La] (no weight decay: a vector). */
  mix?: Param; // [La]
  T: number;
}

export class FusionModel {
  readonly params: Param[] = [];
  readonly spec: FusionSpec;
  private text?: Stem;
  private audio?: Stem;
  private crossTA?: AttentionBlock; // text queries attend to audio
  private crossAT?: AttentionBlock; // audio queries attend to text
  private selfBlocks: AttentionBlock[] = [];
  private gateProj?: Linear; // [2C -> C], gate head only
  private headProj?: Linear; // [2C or C -> C], the merge heads (concat, mean, gate)
  private classifier!: Linear; // [C (or P for the linear head) -> K_cls]
  private skip?: Param; // [S -> K_cls], no bias (the classifier's serves both): linearSkip only
  private acts = new Map<string, Acts>();
  /** Training-split statistics applied to every batch in setInputs (null: inputs used as they are). */
  private norm: InputNorm | null = null;
  /** Zeros [Ta_max * C], written into the positions' gradient before a shorter batch's backward. */
  private zeroPos?: Float32Array;
  /** AdamW step count (1-based after the first update). */
  step = 0;

  private constructor(
    readonly backend: Backend,
    readonly config: FusionConfig,
  ) {
    this.spec = FUSION_SPECS[config.fusion];
  }

  /** A freshly initialised model: weights N(0, 1/in), biases and betas 0, gains 1, positions N(0, 0.02^2). */
  static create(backend: Backend, config: FusionConfig): FusionModel {
    checkFusionConfig(config);
    const m = new FusionModel(backend, config);
    m.build();
    return m;
  }

  get inputNorm(): InputNorm | null {
    return this.norm;
  }

  /** Sets the input standardization (checked: one mean and one std > 0 per input dimension). */
  setInputNorm(norm: InputNorm | null): void {
    const c = this.config;
    const want = { text: c.textDim, audio: c.audioDim, pooled: this.pooledNormWidth };
    for (const [name, st] of Object.entries(norm ?? {}) as [keyof typeof want, InputNorm[keyof InputNorm]][]) {
      if (!st) continue;
      if (!(name in want)) throw new FusionConfigError(`input standardization: unknown input '${name}'`);
      if (st.mean.length !== want[name] || st.std.length !== want[name]) {
        throw new FusionConfigError(
          `input standardization '${name}': ${st.mean.length} means and ${st.std.length} stds for ${want[name]} input dimensions`,
        );
      }
      if (!st.std.every((v) => v > 0 && Number.isFinite(v)) || !st.mean.every(Number.isFinite)) {
        throw new FusionConfigError(`input standardization '${name}': every mean must be finite and every std finite and > 0`);
      }
    }
    this.norm = norm;
  }

  get numParams(): number {
    return this.params.reduce((a, p) => a + p.value.size, 0);
  }

  /** Parameters in a fixed order (it fixes the initial weights): stems, cross, self, head, classifier. */
  private build(): void {
    const c = this.config;
    const s = this.spec;
    const C = c.width;
    const F = c.ffnMult * C;
    const rand = gaussian(mulberry32(c.seed * 7919 + 17)); // the same initial weights on every backend
    const param = (name: string, shape: number[], init: 'normal' | 'zeros' | 'ones', std = 0): Param => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (init === 'ones') data.fill(1);
      if (init === 'normal') for (let i = 0; i < n; i++) data[i] = std * rand();
      const be = this.backend;
      const p: Param = {
        name,
        shape,
        value: be.upload(data, shape, name),
        grad: be.zeros(shape, `d ${name}`),
        m: be.zeros(shape, `m ${name}`),
        v: be.zeros(shape, `v ${name}`),
        decay: shape.length > 1 && !name.endsWith('pos'),
      };
      this.params.push(p);
      return p;
    };
    const linear = (name: string, inDim: number, outDim: number): Linear => ({
      w: param(`${name}.w`, [inDim, outDim], 'normal', 1 / Math.sqrt(inDim)),
      b: param(`${name}.b`, [outDim], 'zeros'),
      inDim,
      outDim,
    });
    const block = (name: string): AttentionBlock => ({
      wq: linear(`${name}.q`, C, C),
      wk: linear(`${name}.k`, C, C),
      wv: linear(`${name}.v`, C, C),
      wo: linear(`${name}.o`, C, C),
      ln1g: param(`${name}.ln1.g`, [C], 'ones'),
      ln1b: param(`${name}.ln1.b`, [C], 'zeros'),
      ff1: linear(`${name}.ff1`, C, F),
      ff2: linear(`${name}.ff2`, F, C),
      ln2g: param(`${name}.ln2.g`, [C], 'ones'),
      ln2b: param(`${name}.ln2.b`, [C], 'zeros'),
    });
    const stems = s.head !== 'linear';
    if (s.text && stems) this.text = { proj: linear('text.proj', c.textDim, C), T: c.maxTextLen };
    if (s.audio && stems) {
      const La = c.audioLayers ?? 1;
      const mix = La > 1 ? param('audio.layerMix', [La], 'zeros') : undefined; // zeros: every layer weighted 1 / La
      const proj = linear('audio.proj', c.audioDim / La, C);
      this.audio = { proj, pos: param('audio.pos', [c.maxAudioLen, C], 'normal', 0.02), ...(mix ? { mix } : {}), T: c.maxAudioLen };
    }
    if (s.cross) {
      this.crossTA = block('cross.text_from_audio');
      this.crossAT = block('cross.audio_from_text');
    }
    if (s.self) for (let l = 0; l < c.layers; l++) this.selfBlocks.push(block(`self.${l}`));
    if (s.head === 'gate') this.gateProj = linear('gate', 2 * C, C);
    if (s.head !== 'pool' && s.head !== 'linear') this.headProj = linear('head', s.head === 'concat' ? 2 * C : C, C);
    this.classifier = linear('classifier', this.pooledWidth, c.numClasses);
    if (this.hasSkip) this.skip = param('skip.w', [this.statsWidth, c.numClasses], 'zeros'); // zeros: starts as the model without it
  }

  /** The classifier's input width: C, or P = 2 Ct + 2 Ca for the linear head. */
  get pooledWidth(): number {
    const c = this.config;
    return this.spec.head === 'linear' ? 2 * c.textDim + 2 * c.audioDim : c.width;
  }

  /** Whether the classifier also reads the stats (config.linearSkip; the linear head is the linear probe itself). */
  get hasSkip(): boolean {
    return (this.config.linearSkip ?? false) && this.spec.head !== 'linear';
  }

  /** The skip's input width S: mean + std of each modality the variant reads (2 Ct and / or 2 Ca). */
  get statsWidth(): number {
    const c = this.config;
    return (this.spec.text ? 2 * c.textDim : 0) + (this.spec.audio ? 2 * c.audioDim : 0);
  }

  /** The width of norm.pooled: the linear head's P, or the skip's S; 0 when neither is there. */
  get pooledNormWidth(): number {
    return this.spec.head === 'linear' ? this.pooledWidth : this.hasSkip ? this.statsWidth : 0;
  }

  // ---------------------------------------------------------------------------------------------- activations

  /**
   * Activations of a batch of B rows at Tt text and Ta audio tokens (0 for a modality without a stem), made once per
   * (B, Tt, Ta) and reused. Those at the model's longest lengths are allocated (only the parts this variant has);
   * a shorter batch's are views of their first elements (Backend.view), so memory stays that of the longest batch
   * however many lengths the batches come in.
   */
  private actsFor(B: number, Tt = this.text?.T ?? 0, Ta = this.audio?.T ?? 0): Acts {
    const key = `${B}:${Tt}:${Ta}`;
    let a = this.acts.get(key);
    if (a) return a;
    const c = this.config;
    const s = this.spec;
    const C = c.width;
    const F = c.ffnMult * C;
    const full = Tt === (this.text?.T ?? 0) && Ta === (this.audio?.T ?? 0) ? undefined : this.actsFor(B); // the storage of views
    const storage = new Map<string, BTensor>(); // label -> tensor
    const made = (label: string, t: BTensor) => {
      if (storage.has(label)) throw new Error(`FusionModel: two activations labelled '${label}'`);
      storage.set(label, t);
      return t;
    };
    const z = (shape: number[], label: string) =>
      made(label, full ? this.backend.view(full.storage.get(label)!, shape) : this.backend.zeros(shape, label));
    const ones = (shape: number[], label: string) =>
      made(label, full?.storage.get(label) ?? this.backend.upload(new Float32Array(shape[0]! * shape[1]!).fill(1), shape, label));
    const drop = (c.blockDropout ?? 0) > 0;
    const blockActs = (Tq: number, Tk: number, n: string): BlockActs => ({
      Tq,
      Tk,
      q: z([B, Tq, C], `${n}.q`),
      k: z([B, Tk, C], `${n}.k`),
      v: z([B, Tk, C], `${n}.v`),
      att: z([B, Tq, C], `${n}.att`),
      lse: z([B, c.heads, Tq], `${n}.lse`),
      o: z([B, Tq, C], `${n}.o`),
      r1: z([B, Tq, C], `${n}.r1`),
      h1: z([B, Tq, C], `${n}.h1`),
      mean1: z([B * Tq], `${n}.mean1`),
      rstd1: z([B * Tq], `${n}.rstd1`),
      fpre: z([B, Tq, F], `${n}.fpre`),
      f: z([B, Tq, F], `${n}.f`),
      f2: z([B, Tq, C], `${n}.f2`),
      r2: z([B, Tq, C], `${n}.r2`),
      y: z([B, Tq, C], `${n}.y`),
      mean2: z([B * Tq], `${n}.mean2`),
      rstd2: z([B * Tq], `${n}.rstd2`),
      dy: z([B, Tq, C], `${n}.dy`),
      dr2: z([B, Tq, C], `${n}.dr2`),
      df: z([B, Tq, F], `${n}.df`),
      dfpre: z([B, Tq, F], `${n}.dfpre`),
      dh1: z([B, Tq, C], `${n}.dh1`),
      dr1: z([B, Tq, C], `${n}.dr1`),
      datt: z([B, Tq, C], `${n}.datt`),
      dq: z([B, Tq, C], `${n}.dq`),
      dk: z([B, Tk, C], `${n}.dk`),
      dv: z([B, Tk, C], `${n}.dv`),
      ...(drop
        ? { od: z([B, Tq, C], `${n}.od`), f2d: z([B, Tq, C], `${n}.f2d`), dod: z([B, Tq, C], `${n}.dod`), df2: z([B, Tq, C], `${n}.df2`) }
        : {}),
    });
    const La = c.audioLayers ?? 1;
    const stemActs = (m: 'text' | 'audio', T: number, Cin: number): StemActs => ({
      x: z([B, T, Cin], `in.${m}`),
      mask: z([B, T], `in.${m}Mask`),
      h: z([B, T, C], `${m}.h`),
      dh: z([B, T, C], `d ${m}.h`),
      ...(m === 'audio' && La > 1
        ? {
            alpha: z([La], 'audio.alpha'),
            dalpha: z([La], 'd audio.alpha'),
            mixed: z([B, T, Cin / La], 'audio.mixed'),
            dmixed: z([B, T, Cin / La], 'd audio.mixed'),
          }
        : {}),
    });
    const text = this.text && stemActs('text', Tt, c.textDim);
    const audio = this.audio && stemActs('audio', Ta, c.audioDim);
    const crossTA = this.crossTA && blockActs(Tt, Ta, 'cross.ta');
    const crossAT = this.crossAT && blockActs(Ta, Tt, 'cross.at');
    // The token sequence the self blocks and the pool head see: both modalities concatenated, or the one read.
    let seq: SeqActs | undefined;
    if (s.head === 'pool') {
      if (text && audio) {
        const T = Tt + Ta;
        seq = { T, x: z([B, T, C], 'x0'), mask: z([B, T], 'in.catMask'), dx: z([B, T, C], 'dx0') };
      } else {
        const only = (text ?? audio)!;
        seq = { T: only.mask.shape[1]!, x: only.h, mask: only.mask, dx: only.dh };
      }
    }
    const pooledIn = s.head === 'concat' ? 2 * C : C;
    const P = this.pooledWidth;
    a = {
      B,
      Tt,
      Ta,
      storage,
      text,
      audio,
      crossTA,
      crossAT,
      seq,
      self: this.selfBlocks.map((_, l) => blockActs(seq!.T, seq!.T, `self.${l}`)),
      merge:
        s.head === 'pool' || s.head === 'linear'
          ? undefined
          : {
              pt: z([B, C], 'pool.text'),
              pa: z([B, C], 'pool.audio'),
              dpt: z([B, C], 'd pool.text'),
              dpa: z([B, C], 'd pool.audio'),
              zcat: z([B, 2, C], 'pool.concat'),
              dzcat: z([B, 2, C], 'd pool.concat'),
              ...(s.head === 'mean' ? { ones2: ones([B, 2], 'ones2') } : {}),
              ...(s.head === 'gate' ? { gs: z([B, C], 'gate.s'), dgs: z([B, C], 'd gate.s') } : {}),
              ...(s.head !== 'concat' ? { u: z([B, pooledIn], 'head.in'), du: z([B, pooledIn], 'd head.in') } : {}),
              hpre: z([B, C], 'head.pre'),
              dhpre: z([B, C], 'd head.pre'),
            },
      onesB: this.audio ? ones([B, 1], 'ones') : undefined,
      pooled: z([B, P], 'pooled'),
      dpooled: z([B, P], 'd pooled'),
      stats: this.skip ? z([B, this.statsWidth], 'stats') : undefined,
      dropped: c.dropout > 0 ? z([B, P], 'dropped') : undefined,
      ddropped: c.dropout > 0 ? z([B, P], 'd dropped') : undefined,
      labels: z([B], 'in.labels'),
      classWeights: z([c.numClasses], 'in.classWeights'),
      logits: z([B, c.numClasses], 'logits'),
      dlogits: z([B, c.numClasses], 'dlogits'),
      loss: z([1], 'loss'),
      losses: z([B], 'losses'),
      gradNorm: z([1], 'grad norm'),
    };
    // what is read after a step (the loss, logits and per-row losses, the clipped norm) is kept; the rest is step scratch
    this.backend.scratch?.([...storage].filter(([label]) => !KEPT_ACTS.has(label)).map(([, t]) => t));
    this.acts.set(key, a);
    return a;
  }

  /** The first Ta rows [Ta, C] of the audio positions (or of their gradient): a view when the batch is shorter than the model's longest. */
  private posRows(t: BTensor, Ta: number): BTensor {
    return Ta === this.audio!.T ? t : this.backend.view(t, [Ta, this.config.width]);
  }

  // ---------------------------------------------------------------------------------------------- layers

  /** y [B*T, out] = x [B*T, in] @ w + b. */
  private async linear(l: Linear, x: BTensor, y: BTensor, rows: number, opts: { gelu?: boolean; pre?: BTensor } = {}): Promise<void> {
    await this.backend.matmul(x, l.w.value, y, { batch: 1, M: rows, N: l.outDim, K: l.inDim }, { bias: l.b.value, ...opts });
  }

  /** dw, db from dy; dx (+)= dy @ w^T when dx is given. */
  private async linearBackward(l: Linear, x: BTensor, dy: BTensor, rows: number, dx?: BTensor, accumulateX = false): Promise<void> {
    await this.backend.matmulBackward(
      { dc: dy, a: x, b: l.w.value, dA: dx, dB: l.w.grad, dBias: l.b.grad },
      { batch: 1, M: rows, N: l.outDim, K: l.inDim },
      { accumulateA: accumulateX },
    );
  }

  /**
   * One post-LN transformer block where queries come from xq and keys / values from xkv (the same tensor for
   * self-attention): y = LN2(h1 + FFN(h1)), h1 = LN1(xq + MHA(xq, xkv)).
   */
  private async blockForward(
    blk: AttentionBlock,
    a: BlockActs,
    xq: BTensor,
    xkv: BTensor,
    mask: BTensor,
    B: number,
    site: number,
    train: boolean,
  ): Promise<void> {
    const be = this.backend;
    const { Tq, Tk } = a;
    const drop = train && a.od !== undefined;
    await this.linear(blk.wq, xq, a.q, B * Tq); // q [B, Tq, C]
    await this.linear(blk.wk, xkv, a.k, B * Tk); // k [B, Tk, C]
    await this.linear(blk.wv, xkv, a.v, B * Tk); // v [B, Tk, C]
    await be.attention(a.q, a.k, a.v, mask, a.att, a.lse, this.config.heads); // att [B, Tq, C], lse [B, H, Tq]
    await this.linear(blk.wo, a.att, a.o, B * Tq); // o [B, Tq, C]
    if (drop) await be.dropout(a.o, a.od!, this.dropoutOpts(this.config.blockDropout!, 2 * site + 1)); // od [B, Tq, C]
    await be.add(xq, drop ? a.od! : a.o, a.r1); // r1 [B, Tq, C] = xq + o
    await be.layerNorm(a.r1, blk.ln1g.value, blk.ln1b.value, a.h1, a.mean1, a.rstd1); // h1 [B, Tq, C]
    await this.linear(blk.ff1, a.h1, a.f, B * Tq, { gelu: true, pre: a.fpre }); // f = gelu(fpre) [B, Tq, F]
    await this.linear(blk.ff2, a.f, a.f2, B * Tq); // f2 [B, Tq, C]
    if (drop) await be.dropout(a.f2, a.f2d!, this.dropoutOpts(this.config.blockDropout!, 2 * site + 2)); // f2d [B, Tq, C]
    await be.add(a.h1, drop ? a.f2d! : a.f2, a.r2); // r2 [B, Tq, C] = h1 + f2
    await be.layerNorm(a.r2, blk.ln2g.value, blk.ln2b.value, a.y, a.mean2, a.rstd2); // y [B, Tq, C]
  }

  /**
   * From a.dy [B, Tq, C]: parameter gradients (overwritten), dxq [B, Tq, C] and dxkv [B, Tk, C] (overwritten, or
   * added into with accumulateQ / accumulateKV). For self-attention pass the same tensor as dxq and dxkv.
   */
  private async blockBackward(
    blk: AttentionBlock,
    a: BlockActs,
    xq: BTensor,
    xkv: BTensor,
    mask: BTensor,
    B: number,
    dxq: BTensor,
    dxkv: BTensor,
    accumulateQ: boolean,
    accumulateKV: boolean,
    site: number,
    train: boolean,
  ): Promise<void> {
    const be = this.backend;
    const { Tq, Tk } = a;
    const drop = train && a.od !== undefined;
    await be.layerNormBackward(a.r2, blk.ln2g.value, a.mean2, a.rstd2, a.dy, a.dr2, blk.ln2g.grad, blk.ln2b.grad); // dr2 [B, Tq, C]
    if (drop) await be.dropoutBackward(a.dr2, a.df2!, this.dropoutOpts(this.config.blockDropout!, 2 * site + 2)); // d f2 [B, Tq, C]
    await this.linearBackward(blk.ff2, a.f, drop ? a.df2! : a.dr2, B * Tq, a.df); // df [B, Tq, F]
    await be.geluBackward(a.fpre, a.df, a.dfpre); // dfpre [B, Tq, F]
    await this.linearBackward(blk.ff1, a.h1, a.dfpre, B * Tq, a.dh1); // dh1 [B, Tq, C]
    await be.axpy(a.dr2, a.dh1); // dh1 += dr2 (residual)
    await be.layerNormBackward(a.r1, blk.ln1g.value, a.mean1, a.rstd1, a.dh1, a.dr1, blk.ln1g.grad, blk.ln1b.grad); // dr1 [B, Tq, C]
    if (drop) await be.dropoutBackward(a.dr1, a.dod!, this.dropoutOpts(this.config.blockDropout!, 2 * site + 1)); // d o [B, Tq, C]
    await this.linearBackward(blk.wo, a.att, drop ? a.dod! : a.dr1, B * Tq, a.datt); // datt [B, Tq, C]
    // dq [B, Tq, C], dk, dv [B, Tk, C]
    await be.attentionBackward(a.q, a.k, a.v, mask, a.att, a.lse, a.datt, a.dq, a.dk, a.dv, this.config.heads);
    const same = dxq === dxkv;
    await this.linearBackward(blk.wq, xq, a.dq, B * Tq, dxq, accumulateQ); // dxq (+)= dq @ Wq^T
    await be.axpy(a.dr1, dxq); // dxq += dr1 (residual)
    await this.linearBackward(blk.wk, xkv, a.dk, B * Tk, dxkv, same || accumulateKV); // dxkv (+)= dk @ Wk^T
    await this.linearBackward(blk.wv, xkv, a.dv, B * Tk, dxkv, true); // dxkv += dv @ Wv^T
  }

  // ---------------------------------------------------------------------------------------------- forward

  /** Uploads one batch ([B, Tt, Ct], [B, Ta, Ca], padded to any lengths up to the model's); only the modalities it reads. */
  setInputs(inp: StepInputs, classWeights: ArrayLike<number>): Acts {
    const B = inp.labels.length;
    const [Tt, Ta] = [inp.textMask.length / B, inp.audioMask.length / B]; // the batch's padded lengths
    for (const [m, T, stem] of [
      ['text', Tt, this.text],
      ['audio', Ta, this.audio],
    ] as const) {
      if (!Number.isInteger(T) || (stem && (T < 1 || T > stem.T)))
        throw new Error(
          `FusionModel: a batch of ${B} rows with ${inp[`${m}Mask`].length} ${m} mask values: ${m} must be ` +
            `1..${stem?.T ?? 'any'} tokens per row`,
        );
    }
    const a = this.actsFor(B, this.text ? Tt : 0, this.audio ? Ta : 0);
    const be = this.backend;
    const c = this.config;
    const linear = this.spec.head === 'linear';
    const pool = linear ? { text: true, audio: true } : this.skip ? { text: this.spec.text, audio: this.spec.audio } : undefined;
    const x = normalizeInputs(inp, { B, Tt, Ta, Ct: c.textDim, Ca: c.audioDim }, this.norm, pool); // standardized
    if (a.text) be.write(a.text.x, x.text), be.write(a.text.mask, inp.textMask); // [B, Tt, Ct], [B, Tt]
    if (a.audio) be.write(a.audio.x, x.audio), be.write(a.audio.mask, inp.audioMask); // [B, Ta, Ca], [B, Ta]
    if (linear) be.write(a.pooled, x.pooled!); // [B, P]: the linear head's features, built on the host
    if (a.stats) be.write(a.stats, x.pooled!); // [B, S]: the skip's features, likewise
    if (a.text && a.audio && a.seq) {
      const catMask = new Float32Array(B * (Tt + Ta)); // [B, Tt + Ta]
      for (let b = 0; b < B; b++) {
        catMask.set(inp.textMask.subarray(b * Tt, (b + 1) * Tt), b * (Tt + Ta));
        catMask.set(inp.audioMask.subarray(b * Ta, (b + 1) * Ta), b * (Tt + Ta) + Tt);
      }
      be.write(a.seq.mask, catMask);
    }
    be.write(a.labels, inp.labels);
    be.write(a.classWeights, classWeights);
    return a;
  }

  /** Forward to logits (and, with labels, the loss and dlogits; label smoothing eps `smoothing`). Dropout only when `train`. */
  async forward(a: Acts, train: boolean, withLoss: boolean, smoothing = 0): Promise<void> {
    const be = this.backend;
    const c = this.config;
    const { B } = a;
    const C = c.width;
    // stem: per-modality projections (+ modality embedding = the bias) and audio positions
    if (this.text) await this.linear(this.text.proj, a.text!.x, a.text!.h, B * a.Tt); // t0 [B, Tt, C]
    if (this.audio) {
      const Ta = a.Ta;
      const au = a.audio!;
      if (this.audio.mix) {
        const La = this.audio.mix.shape[0]!;
        await be.softmax(this.audio.mix.value, au.alpha!); // alpha [La] = softmax(audio.layerMix)
        const dims = { batch: B * Ta, M: this.audio.proj.inDim, N: 1, K: La };
        await be.matmul(au.x, au.alpha!, au.mixed!, dims, { transA: true, broadcastB: true }); // mixed [B, Ta, Ca/La] = x^T alpha
      }
      await this.linear(this.audio.proj, au.mixed ?? au.x, au.h, B * Ta); // a0 [B, Ta, C]
      await be.matmul(
        a.onesB!,
        this.posRows(this.audio.pos!.value, Ta),
        a.audio!.h,
        { batch: 1, M: B, N: Ta * C, K: 1 },
        { accumulate: true },
      ); // a0 += pos [Ta, C] per row
    }
    // cross: each modality attends to the other
    if (a.crossTA && a.crossAT) {
      // t1 [B, Tt, C]: text attends to audio
      await this.blockForward(this.crossTA!, a.crossTA, a.text!.h, a.audio!.h, a.audio!.mask, B, 0, train);
      // a1 [B, Ta, C]: audio attends to text
      await this.blockForward(this.crossAT!, a.crossAT, a.audio!.h, a.text!.h, a.text!.mask, B, 1, train);
    }
    // seq: the token sequence, through the self blocks
    let x: BTensor | undefined; // [B, T, C]
    if (a.seq) {
      if (a.text && a.audio) {
        const [t, au] = a.crossTA ? [a.crossTA.y, a.crossAT!.y] : [a.text.h, a.audio.h];
        await be.concatTime(t, au, a.seq.x, B, a.Tt, a.Ta, C); // x0 [B, T, C]
      }
      x = a.seq.x;
      for (const [l, blk] of this.selfBlocks.entries()) {
        await this.blockForward(blk, a.self[l]!, x, x, a.seq.mask, B, 2 + l, train); // [B, T, C]
        x = a.self[l]!.y;
      }
    }
    // head: tokens -> pooled [B, C] (the linear head's [B, P] was written by setInputs)
    if (a.merge) await this.mergeForward(a.merge, a.text!, a.audio!, a.pooled, B);
    else if (a.seq) await be.meanPool(x!, a.seq.mask, a.pooled); // pooled [B, C]
    // classifier
    let feat = a.pooled; // [B, C] (or [B, P])
    if (train && a.dropped) {
      await be.dropout(a.pooled, a.dropped, this.dropoutOpts(c.dropout, 0)); // dropped [B, C]
      feat = a.dropped;
    }
    await this.linear(this.classifier, feat, a.logits, B); // logits [B, K_cls]
    if (this.skip)
      // logits += stats [B, S] @ W_skip
      await be.matmul(a.stats!, this.skip.value, a.logits, { batch: 1, M: B, N: c.numClasses, K: this.statsWidth }, { accumulate: true });
    // loss [1], dlogits [B, K_cls]
    if (withLoss) await be.crossEntropy(a.logits, a.labels, a.classWeights, a.loss, a.dlogits, a.losses, smoothing);
  }

  /** The merge heads: pt, pa = mean of each modality's stem tokens [B, C]; merged; pooled = gelu(linear) [B, C]. */
  private async mergeForward(m: MergeActs, t: StemActs, au: StemActs, pooled: BTensor, B: number): Promise<void> {
    const be = this.backend;
    const C = this.config.width;
    await be.meanPool(t.h, t.mask, m.pt); // pt [B, C]
    await be.meanPool(au.h, au.mask, m.pa); // pa [B, C]
    await be.concatTime(m.pt, m.pa, m.zcat, B, 1, 1, C); // zcat [B, 2, C]
    const head = this.spec.head;
    if (head === 'mean') await be.meanPool(m.zcat, m.ones2!, m.u!); // u = (pt + pa) / 2 [B, C]
    if (head === 'gate') {
      await this.linear(this.gateProj!, m.zcat, m.gs!, B); // gs [B, C] = zcat [B, 2C] @ Wg
      await be.gate(m.gs!, m.pt, m.pa, m.u!); // u = sigmoid(gs) pt + (1 - sigmoid(gs)) pa [B, C]
    }
    // pooled = gelu(u [B, C] or zcat [B, 2C] @ W) [B, C]
    await this.linear(this.headProj!, m.u ?? m.zcat, pooled, B, { gelu: true, pre: m.hpre });
  }

  /**
   * The dropout mask of one site in this step: seed from (seed, step); `site` 0 is the classifier's input, 2k+1 and
   * 2k+2 the attention and feed-forward outputs of block k (cross text-from-audio 0, audio-from-text 1, self l 2+l),
   * each at its own offset of the hash stream (2^24 elements apart).
   */
  private dropoutOpts(p: number, site: number): DropoutOpts {
    const seed = (Math.imul(this.config.seed + 1, 0x9e3779b1) ^ Math.imul(this.step + 1, 0x85ebca6b)) >>> 0;
    return site ? { p, seed, offset: (site * 0x1000000) >>> 0 } : { p, seed };
  }

  // ---------------------------------------------------------------------------------------------- backward

  /** Every parameter's gradient (overwritten) from dlogits, the forward's activations and the same dropout mask. */
  async backward(a: Acts, train: boolean): Promise<void> {
    const be = this.backend;
    const C = this.config.width;
    const { B } = a;
    // classifier
    const dropped = train && a.dropped ? { y: a.dropped, dy: a.ddropped! } : undefined;
    if (this.skip)
      await be.matmulBackward(
        { dc: a.dlogits, a: a.stats!, b: this.skip.value, dB: this.skip.grad },
        { batch: 1, M: B, N: this.config.numClasses, K: this.statsWidth },
      ); // d W_skip: its input is a constant
    if (this.spec.head === 'linear') {
      await this.linearBackward(this.classifier, dropped?.y ?? a.pooled, a.dlogits, B); // d classifier only: its input is a constant
      return;
    }
    await this.linearBackward(this.classifier, dropped?.y ?? a.pooled, a.dlogits, B, dropped?.dy ?? a.dpooled); // d feat [B, C]
    if (dropped) await be.dropoutBackward(dropped.dy, a.dpooled, this.dropoutOpts(this.config.dropout, 0)); // dpooled [B, C]
    // head, then the token sequence back through the self blocks
    if (a.merge)
      await this.mergeBackward(a.merge, a.text!, a.audio!, a.dpooled, B); // dt0 [B, Tt, C], da0 [B, Ta, C]
    else {
      const seq = a.seq!;
      const L = this.selfBlocks.length;
      await be.meanPoolBackward(seq.mask, a.dpooled, L ? a.self[L - 1]!.dy : seq.dx); // [B, T, C]
      for (let l = L - 1; l >= 0; l--) {
        const xin = l === 0 ? seq.x : a.self[l - 1]!.y;
        const dxin = l === 0 ? seq.dx : a.self[l - 1]!.dy;
        // dxin [B, T, C]
        await this.blockBackward(this.selfBlocks[l]!, a.self[l]!, xin, xin, seq.mask, B, dxin, dxin, false, false, 2 + l, train);
      }
      if (a.text && a.audio) {
        const [dt, da] = a.crossTA ? [a.crossTA.dy, a.crossAT!.dy] : [a.text.dh, a.audio.dh];
        await be.splitTime(seq.dx, dt, da, B, a.Tt, a.Ta, C); // [B, Tt, C], [B, Ta, C]
      }
    }
    // cross
    if (a.crossTA && a.crossAT) {
      const [t, au] = [a.text!, a.audio!];
      await this.blockBackward(this.crossTA!, a.crossTA, t.h, au.h, au.mask, B, t.dh, au.dh, false, false, 0, train); // dt0, da0
      await this.blockBackward(this.crossAT!, a.crossAT, au.h, t.h, t.mask, B, au.dh, t.dh, true, true, 1, train); // dt0, da0 +=
    }
    // stem
    if (this.text) await this.linearBackward(this.text.proj, a.text!.x, a.text!.dh, B * a.Tt); // d text.proj
    if (this.audio) {
      const Ta = a.Ta;
      const au = a.audio!;
      await this.linearBackward(this.audio.proj, au.mixed ?? au.x, au.dh, B * Ta, au.dmixed); // d audio.proj (dmixed [B, Ta, Ca/La])
      if (this.audio.mix) {
        const dims = { batch: B * Ta, M: this.audio.proj.inDim, N: 1, K: this.audio.mix.shape[0]! };
        // dalpha [La] = sum over tokens of x^T dmixed (padding tokens are zeros)
        await be.matmulBackward({ dc: au.dmixed!, a: au.x, b: au.alpha!, dB: au.dalpha! }, dims, { transA: true, broadcastB: true });
        await be.softmaxBackward(au.alpha!, au.dalpha!, this.audio.mix.grad); // d audio.layerMix [La]
      }
      const pos = this.audio.pos!;
      if (Ta < this.audio.T) {
        // rows past the batch's Ta: no gradient
        this.zeroPos ??= new Float32Array(pos.grad.size);
        be.write(pos.grad, this.zeroPos);
      }
      await be.matmulBackward(
        { dc: a.audio!.dh, a: a.onesB!, b: this.posRows(pos.value, Ta), dB: this.posRows(pos.grad, Ta) },
        { batch: 1, M: B, N: Ta * C, K: 1 },
      ); // d pos [Ta, C] = column sums over B
    }
  }

  /** dpooled [B, C] -> dt0 [B, Tt, C], da0 [B, Ta, C] (overwritten) through a merge head. */
  private async mergeBackward(m: MergeActs, t: StemActs, au: StemActs, dpooled: BTensor, B: number): Promise<void> {
    const be = this.backend;
    const C = this.config.width;
    const head = this.spec.head;
    await be.geluBackward(m.hpre, dpooled, m.dhpre); // dhpre [B, C]
    await this.linearBackward(this.headProj!, m.u ?? m.zcat, m.dhpre, B, m.du ?? m.dzcat); // d head input [B, C] or [B, 2C]
    if (head === 'mean') await be.meanPoolBackward(m.ones2!, m.du!, m.dzcat); // dzcat [B, 2, C]
    if (head === 'gate') {
      await be.gateBackward(m.gs!, m.pt, m.pa, m.du!, m.dgs!, m.dpt, m.dpa); // dgs, dpt, dpa [B, C]
      await this.linearBackward(this.gateProj!, m.zcat, m.dgs!, B, m.dzcat); // dzcat [B, 2, C]
      await be.splitTime(m.dzcat, m.dpt, m.dpa, B, 1, 1, C, true); // dpt, dpa += dzcat halves
    } else {
      await be.splitTime(m.dzcat, m.dpt, m.dpa, B, 1, 1, C); // dpt, dpa [B, C]
    }
    await be.meanPoolBackward(t.mask, m.dpt, t.dh); // dt0 [B, Tt, C]
    await be.meanPoolBackward(au.mask, m.dpa, au.dh); // da0 [B, Ta, C]
  }

  // ---------------------------------------------------------------------------------------------- optimizer

  /** One AdamW update of every parameter, gradients clipped by their global norm (computed and applied on the device). */
  async optimizerStep(a: Acts, o: AdamwSettings): Promise<void> {
    const be = this.backend;
    this.step += 1;
    const clip = o.maxGradNorm > 0 ? { norm: a.gradNorm, maxNorm: o.maxGradNorm } : undefined;
    await be.gradNorm(
      this.params.map((p) => p.grad),
      a.gradNorm,
    ); // [1], stays on the device
    for (const p of this.params) {
      await be.adamw(p.value, p.grad, p.m, p.v, {
        lr: o.lr,
        step: this.step,
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        weightDecay: p.decay ? o.weightDecay : 0,
        clip,
      });
    }
  }

  /** Forward + backward + update on one batch (label smoothing eps `smoothing`); the loss stays on the device (read it with `readLoss`). */
  async trainStep(inp: StepInputs, classWeights: ArrayLike<number>, o: AdamwSettings, smoothing = 0): Promise<Acts> {
    await this.backend.flush(); // the previous step is submitted before this step's inputs are written
    const a = this.setInputs(inp, classWeights);
    await this.forward(a, true, true, smoothing);
    await this.backward(a, true);
    await this.optimizerStep(a, o);
    return a;
  }

  async readLoss(a: Acts): Promise<number> {
    return (await this.backend.read(a.loss))[0]!;
  }

  /** Logits [B, K_cls] for one batch, no dropout. */
  async predict(inp: StepInputs): Promise<Float32Array | Float64Array> {
    await this.backend.flush();
    const a = this.setInputs(inp, new Float32Array(this.config.numClasses).fill(1));
    await this.forward(a, false, false);
    return this.backend.read(a.logits);
  }

  // ---------------------------------------------------------------------------------------------- state

  /** Every parameter and both AdamW moments, read back (for checkpoints and tests). */
  async readState(): Promise<Map<string, { value: Float32Array; m: Float32Array; v: Float32Array; shape: number[] }>> {
    const out = new Map<string, { value: Float32Array; m: Float32Array; v: Float32Array; shape: number[] }>();
    for (const p of this.params) {
      const f = async (t: BTensor) => Float32Array.from(await this.backend.read(t));
      out.set(p.name, { value: await f(p.value), m: await f(p.m), v: await f(p.v), shape: p.shape });
    }
    return out;
  }

  /** Loads parameters (and moments, when given) by name; every parameter must be present with its shape. */
  loadState(state: ReadonlyMap<string, { value: ArrayLike<number>; m?: ArrayLike<number>; v?: ArrayLike<number> }>, step: number): void {
    for (const p of this.params) {
      const s = state.get(p.name);
      if (!s) throw new Error(`checkpoint has no tensor '${p.name}'`);
      if (s.value.length !== p.value.size)
        throw new Error(
          `checkpoint tensor '${p.name}' has ${s.value.length} values, the model expects ${p.value.size} [${p.shape.join(', ')}]`,
        );
      this.backend.write(p.value, s.value);
      if (s.m) this.backend.write(p.m, s.m);
      if (s.v) this.backend.write(p.v, s.v);
    }
    this.step = step;
  }

  /** The learned mix of audio layers, softmax(audio.layerMix) [La] (layer 0 = the encoder's embeddings); null without one. */
  async layerMixWeights(): Promise<number[] | null> {
    const mix = this.audio?.mix;
    if (!mix) return null;
    const w = Array.from(await this.backend.read(mix.value));
    const top = Math.max(...w);
    const e = w.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  /** Parameter gradients read back (tests). */
  async readGrads(): Promise<Map<string, Float32Array | Float64Array>> {
    const out = new Map<string, Float32Array | Float64Array>();
    for (const p of this.params) out.set(p.name, await this.backend.read(p.grad));
    return out;
  }
}

/** One modality's input and stem output. */
interface StemActs {
  x: BTensor; // [B, T, Cin]  the input tokens
  mask: BTensor; // [B, T]
  h: BTensor; // [B, T, C]  t0 / a0
  dh: BTensor; // [B, T, C]
  /** audio with La > 1 layers per token: the mix weights and the mixed tokens the projection reads. */
  alpha?: BTensor; // [La]
  dalpha?: BTensor; // [La]
  mixed?: BTensor; // [B, T, Cin / La]
  dmixed?: BTensor; // [B, T, Cin / La]
}

/** The token sequence of the pool head: x0 = concat(t, a) with its mask, or the one modality's stem output. */
interface SeqActs {
  T: number;
  x: BTensor; // [B, T, C]
  mask: BTensor; // [B, T]
  dx: BTensor; // [B, T, C]
}

/** A merge head's buffers (concat, mean, gate): only the ones its head uses are there. */
interface MergeActs {
  pt: BTensor; // [B, C]
  pa: BTensor; // [B, C]
  dpt: BTensor;
  dpa: BTensor;
  zcat: BTensor; // [B, 2, C]
  dzcat: BTensor;
  ones2?: BTensor; // [B, 2]  mean
  gs?: BTensor; // [B, C]  gate
  dgs?: BTensor;
  u?: BTensor; // [B, C]  mean, gate
  du?: BTensor;
  hpre: BTensor; // [B, C]
  dhpre: BTensor;
}

/** Every buffer of one batch shape; a part the variant lacks is undefined. */
interface Acts {
  B: number;
  /** The batch's text / audio lengths (0 for a modality without a stem). */
  Tt: number;
  Ta: number;
  /** Every tensor above by its label (the storage views of a shorter batch's activations point into). */
  storage: Map<string, BTensor>;
  text?: StemActs;
  audio?: StemActs;
  onesB?: BTensor; // [B, 1]  adds the audio positions to every row
  crossTA?: BlockActs;
  crossAT?: BlockActs;
  seq?: SeqActs;
  self: BlockActs[];
  merge?: MergeActs;
  pooled: BTensor; // [B, C]
  dpooled: BTensor;
  stats?: BTensor; // [B, S]  the skip's input
  dropped?: BTensor; // [B, C]
  ddropped?: BTensor;
  labels: BTensor; // [B]
  classWeights: BTensor; // [K_cls]
  logits: BTensor; // [B, K_cls]
  dlogits: BTensor;
  loss: BTensor; // [1]
  losses: BTensor; // [B]
  gradNorm: BTensor; // [1]
}
export type { Acts as FusionActivations };
