// `speech`: a real pretrained speech encoder that needs no download: Google's speech_embedding model as
// packaged by openWakeWord (../shared/assets/speech-embedding, MIT), run with onnxruntime-node.
//   melspectrogram.onnx: 16 kHz audio (int16 scale) -> [frames, 32] mel frames every 10 ms, then x / 10 + 2
//                        (openWakeWord's scaling);
//   embedding_model.onnx: 76 mel frames (760 ms) -> one 96-d embedding; windows every 8 frames (80 ms).
// So a clip becomes one 96-d token per 80 ms (a 3 s clip gives 28). Clips shorter than 76 frames are zero-padded.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelSettings } from './settings.ts';
import { padSequences, type AudioEncoder, type EncodedBatch } from './types.ts';

export const SPEECH_DIM = 96;
const WINDOW = 76;
const STEP = 8;
const MELS = 32;
const MIN_SAMPLES = (WINDOW - 1) * 160 + 400 + 160 * 3; // enough samples for 76 frames after the model's edge trim
const MAX_SECONDS = 30;

export async function createSpeechEmbeddingEncoder(folder?: string): Promise<AudioEncoder> {
  const dir = folder ?? join(modelSettings.assetsDir, 'speech-embedding');
  for (const f of ['melspectrogram.onnx', 'embedding_model.onnx']) {
    if (!existsSync(join(dir, f))) {
      throw new Error(
        `the 'speech' audio encoder needs ${join(dir, f)} (openWakeWord's models/${f}): point EMOFUSE_ASSETS at the assets ` +
          `folder, or give 'speech:<folder>'`,
      );
    }
  }
  const ort = await import('onnxruntime-node');
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const mel = await ort.InferenceSession.create(join(dir, 'melspectrogram.onnx'), opts);
  const emb = await ort.InferenceSession.create(join(dir, 'embedding_model.onnx'), opts);
  return {
    modality: 'audio',
    id: folder ? `speech:${folder}` : 'speech',
    version: 'speech-v1:openwakeword-melspectrogram+embedding_model:76/8',
    dim: SPEECH_DIM,
    sampleRate: 16000,
    async encode(clips): Promise<EncodedBatch> {
      const seqs = [];
      for (const clip of clips) {
        const n = Math.max(MIN_SAMPLES, Math.min(clip.length, MAX_SECONDS * 16000));
        const audio = new Float32Array(n); // int16 scale, as openWakeWord feeds it
        for (let i = 0; i < Math.min(n, clip.length); i++) audio[i] = clip[i]! * 32767;
        const melOut = await mel.run({ [mel.inputNames[0]!]: new ort.Tensor('float32', audio, [1, n]) });
        const m = melOut[mel.outputNames[0]!]!;
        const frames = m.dims[2]!;
        const melData = m.data as Float32Array; // [1, 1, frames, 32]
        const T = Math.max(1, Math.floor((frames - WINDOW) / STEP) + 1);
        const windows = new Float32Array(T * WINDOW * MELS); // [T, 76, 32, 1]
        for (let t = 0; t < T; t++) {
          for (let f = 0; f < WINDOW; f++) {
            const src = Math.min(frames - 1, t * STEP + f) * MELS;
            for (let k = 0; k < MELS; k++) windows[(t * WINDOW + f) * MELS + k] = melData[src + k]! / 10 + 2;
          }
        }
        const out = await emb.run({ [emb.inputNames[0]!]: new ort.Tensor('float32', windows, [T, WINDOW, MELS, 1]) });
        seqs.push({ data: Float32Array.from(out[emb.outputNames[0]!]!.data as Float32Array), length: T }); // [T, 96]
      }
      return padSequences(seqs, SPEECH_DIM);
    },
    async dispose() {
      await mel.release();
      await emb.release();
    },
  };
}
