// `logmel`: AST's own preprocessing as a built-in audio front end, no download. 16 kHz audio -> Kaldi fbank
// (25 ms Hanning frames every 10 ms, 128 mel bins, log), normalised with AST's mean and std as AST does
// ((x - mean) / (2 std)), then grouped into time patches: AST's patches are 16 frames tall with a time stride of
// 10 frames, so token t covers frames [10 t, 10 t + 16) and is that patch's per-bin mean and standard deviation
// over time: C = 2 x 128 = 256, about 100 tokens per 10 s.
// The filterbank is transformers.js's ASTFeatureExtractor (the same code its AST pipeline runs), configured from
// the AST preprocessor_config.json; test/model/encoders.test.ts checks it against an independent numpy Kaldi fbank.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelSettings } from './settings.ts';
import { loadTransformers } from './transformers-env.ts';
import { padSequences, type AudioEncoder, type EncodedBatch } from './types.ts';

export const LOGMEL_BINS = 128;
export const FRAME_LENGTH = 400; // 25 ms at 16 kHz
export const FRAME_HOP = 160; // 10 ms
export const PATCH_FRAMES = 16;
export const PATCH_STRIDE = 10;
/** Longer clips are cut (30 s -> 300 tokens) to keep caches and attention bounded. */
export const LOGMEL_MAX_SECONDS = 30;

/** AST's published preprocessing settings (also in ../shared/assets/ast-preprocessor/preprocessor_config.json). */
const AST_DEFAULT_CONFIG = {
  feature_extractor_type: 'ASTFeatureExtractor',
  sampling_rate: 16000,
  num_mel_bins: 128,
  max_length: 1024,
  do_normalize: true,
  mean: -4.2677393,
  std: 4.5689974,
  feature_size: 1,
  padding_value: 0.0,
  return_attention_mask: false,
};

export interface LogmelFrames {
  /** [frames, 128] normalised log-mel frames. */
  data: Float32Array;
  frames: number;
}

type FbankExtractor = { _extract_fbank_features(w: Float32Array, maxLength: number): Promise<{ data: Float32Array; dims: number[] }> };

export async function createLogmelFrontEnd(): Promise<{
  frames(clip: Float32Array): Promise<LogmelFrames>;
  config: typeof AST_DEFAULT_CONFIG;
}> {
  const file = join(modelSettings.assetsDir, 'ast-preprocessor', 'preprocessor_config.json');
  const config = existsSync(file) ? { ...AST_DEFAULT_CONFIG, ...JSON.parse(readFileSync(file, 'utf8')) } : AST_DEFAULT_CONFIG;
  const { ASTFeatureExtractor } = await loadTransformers();
  const extractor = new ASTFeatureExtractor(config) as unknown as FbankExtractor;
  const denom = 2 * config.std;
  return {
    config,
    async frames(clip) {
      let wave = clip.length > LOGMEL_MAX_SECONDS * 16000 ? clip.subarray(0, LOGMEL_MAX_SECONDS * 16000) : clip;
      if (wave.length < FRAME_LENGTH) {
        const padded = new Float32Array(FRAME_LENGTH);
        padded.set(wave);
        wave = padded;
      }
      const frames = 1 + Math.floor((wave.length - FRAME_LENGTH) / FRAME_HOP);
      const fbank = await extractor._extract_fbank_features(wave, frames); // [frames, 128]
      const data = Float32Array.from(fbank.data.subarray(0, frames * LOGMEL_BINS), (x) => (x - config.mean) / denom);
      return { data, frames };
    },
  };
}

/** Groups [frames, 128] into time patches: token t = mean and std over frames [10 t, 10 t + 16) -> [T, 256]. */
export function patchTokens(fr: LogmelFrames): { data: Float32Array; length: number } {
  const C = 2 * LOGMEL_BINS;
  const T = Math.max(1, Math.ceil((fr.frames - PATCH_FRAMES) / PATCH_STRIDE) + 1);
  const data = new Float32Array(T * C); // [T, C]
  for (let t = 0; t < T; t++) {
    const start = t * PATCH_STRIDE;
    const end = Math.min(fr.frames, start + PATCH_FRAMES);
    const n = end - start;
    for (let m = 0; m < LOGMEL_BINS; m++) {
      let s = 0;
      let s2 = 0;
      for (let f = start; f < end; f++) {
        const x = fr.data[f * LOGMEL_BINS + m]!;
        s += x;
        s2 += x * x;
      }
      const mean = s / n;
      data[t * C + m] = mean;
      data[t * C + LOGMEL_BINS + m] = Math.sqrt(Math.max(0, s2 / n - mean * mean));
    }
  }
  return { data, length: T };
}

export async function createLogmelEncoder(): Promise<AudioEncoder> {
  const frontEnd = await createLogmelFrontEnd();
  return {
    modality: 'audio',
    id: 'logmel',
    version: `logmel-v1:kaldi-fbank128:ast-norm(${frontEnd.config.mean},${frontEnd.config.std}):patch16/10:mean+std`,
    dim: 2 * LOGMEL_BINS,
    sampleRate: 16000,
    async encode(clips): Promise<EncodedBatch> {
      const seqs = [];
      for (const clip of clips) seqs.push(patchTokens(await frontEnd.frames(clip)));
      return padSequences(seqs, 2 * LOGMEL_BINS);
    },
  };
}
