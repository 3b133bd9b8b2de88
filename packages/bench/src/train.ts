// `bench train`: training steps per second of the default fusion model (cross-self, width 256, 4 heads,
// 1 self-attention layer; packages/model) on one batch of B=32 utterances with Tt=64 text tokens of 768
// (BERT-sized) and Ta=128 audio tokens of 768 (AST-sized), 7 classes, padded rows masked.
// One timed run = FusionModel.trainStep (forward, backward, AdamW) + readLoss (a mapped readback: the step is
// complete). Validation: from the same seed, the losses of the first two steps (the second one depends on the
// first update) on the first 4 utterances of the batch (same model and padding lengths) against the float64
// CPU backend, within 1e-4 relative (test/model/backends.test.ts's rule).
// PyTorch with the identical architecture is not here yet: that variant is listed as skipped.

import { lengthMask, randomF32, type Gpu, type Tolerance } from '@emofuse/kernels';
import { CpuBackend, DEFAULT_FUSION, FusionModel, WgslBackend, type AdamwSettings, type Backend, type FusionConfig, type StepInputs } from '@emofuse/model';
import type { BenchCase, Runner, Variant } from './harness.ts';

export interface TrainShape {
  B: number;
  Tt: number;
  Ta: number;
  Ct: number;
  Ca: number;
}

export const TRAIN_SHAPE: TrainShape = { B: 32, Tt: 64, Ta: 128, Ct: 768, Ca: 768 };
export const TRAIN_QUICK_SHAPE: TrainShape = { B: 4, Tt: 9, Ta: 13, Ct: 24, Ca: 20 };
const K_CLS = 7;
const ADAMW: AdamwSettings = { lr: 5e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
/** Losses of the first two steps vs the float64 CPU backend (test/model/backends.test.ts: 1e-4 relative). */
export const TRAIN_TOL: Tolerance = { atol: 1e-6, rtol: 1e-4 };

function batch(s: TrainShape, set: number): StepInputs {
  const seed = 5000 + 10 * set;
  // lengths from full down to about a third, so padding is exercised
  const lens = (T: number) => Array.from({ length: s.B }, (_, b) => Math.max(1, T - Math.floor((b * 2 * T) / (3 * s.B))));
  return {
    text: randomF32(s.B * s.Tt * s.Ct, seed + 1),
    textMask: lengthMask(lens(s.Tt), s.Tt),
    audio: randomF32(s.B * s.Ta * s.Ca, seed + 2),
    audioMask: lengthMask(lens(s.Ta), s.Ta),
    labels: Array.from({ length: s.B }, (_, b) => (b * 5 + set) % K_CLS),
  };
}

function config(s: TrainShape, quick: boolean): FusionConfig {
  return {
    ...DEFAULT_FUSION,
    ...(quick ? { width: 16, heads: 2 } : {}),
    dropout: 0, // dropout masks are identical on every backend, but 0 keeps the comparison about the kernels
    textDim: s.Ct,
    audioDim: s.Ca,
    maxTextLen: s.Tt,
    maxAudioLen: s.Ta,
    numClasses: K_CLS,
  };
}

/** Validation uses the first VALIDATE_B utterances of input set 0: the float64 backend at B=32 takes minutes. */
const VALIDATE_B = 4;

function firstUtterances(s: TrainShape, inp: StepInputs, n: number): StepInputs {
  const b = Math.min(n, s.B);
  return {
    text: inp.text.slice(0, b * s.Tt * s.Ct),
    textMask: inp.textMask.slice(0, b * s.Tt),
    audio: inp.audio.slice(0, b * s.Ta * s.Ca),
    audioMask: inp.audioMask.slice(0, b * s.Ta),
    labels: Array.from(inp.labels).slice(0, b),
  };
}

/** The first two losses from a fresh model on input set 0. */
async function twoLosses(backend: Backend, cfg: FusionConfig, inp: StepInputs): Promise<number[]> {
  const model = FusionModel.create(backend, cfg);
  const w = new Float32Array(K_CLS).fill(1);
  const l1 = await model.readLoss(await model.trainStep(inp, w, ADAMW));
  const l2 = await model.readLoss(await model.trainStep(inp, w, ADAMW));
  return [l1, l2];
}

export function trainCases(gpu: Gpu, quick: boolean, sets: number): BenchCase[] {
  const s = quick ? TRAIN_QUICK_SHAPE : TRAIN_SHAPE;
  const cfg = config(s, quick);
  let data: StepInputs[] | null = null;
  const getData = () => (data ??= Array.from({ length: sets }, (_, i) => batch(s, i)));
  let refLosses: number[] | null = null;

  const variant = (name: string, device: string, make: () => Promise<Backend>, iterations?: number, note?: string): Variant => ({
    name,
    kind: 'ours',
    device,
    iterations,
    ...(iterations === 1 ? { warmup: 0 } : {}),
    note,
    async prepare(): Promise<Runner> {
      const backend = await make();
      const model = FusionModel.create(backend, cfg);
      const w = new Float32Array(K_CLS).fill(1);
      return {
        async run(i) {
          await model.readLoss(await model.trainStep(getData()[i % sets]!, w, ADAMW));
        },
        async outputs() {
          // validation: a fresh model's first two steps on set 0, as the reference does
          return [await twoLosses(backend, cfg, firstUtterances(s, getData()[0]!, VALIDATE_B))];
        },
      };
    },
  });

  const variants: Variant[] = [
    variant('wgsl (ours)', `WebGPU ${gpu.adapter.device}`, () => WgslBackend.create(gpu)),
    variant('cpu f32 (ours)', 'CPU JS, 1 thread', async () => new CpuBackend('f32'), 1, 'the model on the CPU references, float32 storage'),
    { name: 'PyTorch CPU', kind: 'peer', device: 'PyTorch CPU', prepare: async () => ({ skip: 'the identical architecture in PyTorch is not written yet (issue 5: bench train)' }) },
  ];
  return [
    {
      suite: 'train',
      op: 'train step',
      pass: 'fwd+bwd+adamw',
      shape: { B: s.B, Tt: s.Tt, Ta: s.Ta, Ct: s.Ct, Ca: s.Ca, C: cfg.width, H: cfg.heads },
      flops: 0,
      flopsFormula: `${cfg.fusion}, ${cfg.layers} self-attention layer, dropout 0; rate = utterances per second; validated on the first ${Math.min(VALIDATE_B, s.B)} utterances`,
      itemsPerRun: s.B,
      itemUnit: 'utt/s',
      tol: TRAIN_TOL,
      reference: () => [refLosses!],
      prepareReference: async () => {
        refLosses ??= await twoLosses(new CpuBackend('f64'), cfg, firstUtterances(s, getData()[0]!, VALIDATE_B));
      },
      variants,
      baseline: 'wgsl (ours)',
    },
  ];
}
