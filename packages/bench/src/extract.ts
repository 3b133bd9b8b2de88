// `bench extract`: utterances per second of each encoder on real speech, a batch of EmoDB clips (22.05 kHz
// WAV files from the offline assets) and their English transcripts. Cases:
//   - reading the audio: WAV decoding, down-mix and anti-aliased resampling to 16 kHz (what every audio
//     encoder is fed; the built-in encoders below are timed on the already resampled clips);
//   - each text encoder (hash, bert[:model]) on B transcripts, each audio encoder (logmel, speech, ast[:model])
//     on B clips.
// There is no independent reference for an encoder's features here (they are checked against independent
// implementations in test/model/encoders.test.ts: logmel vs a numpy fbank within 5e-6, the transformers.js
// encoders vs PyTorch within 1e-4), so "validation" is a determinism check: the timed encoder must reproduce,
// on input set 0, what a second, separately created instance computes, to 1e-6. A transformers.js model that is
// not available (no weights offline) is skipped with the reason.

import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Gpu, Tolerance } from '@emofuse/kernels';
import { createAudioEncoder, createTextEncoder, loadAudio, modelSettings, readEmoDB, type AudioEncoder, type EncodedBatch, type TextEncoder } from '@emofuse/model';
import type { BenchCase, Runner, Variant } from './harness.ts';

export const EXTRACT_ENCODERS = ['hash', 'bert', 'logmel', 'speech', 'ast'] as const;
const DETERMINISM: Tolerance = { atol: 1e-6, rtol: 1e-6 };

interface Clips {
  files: string[];
  texts: string[];
}

function emodbClips(n: number): Clips | string {
  const dir = join(modelSettings.assetsDir, 'emodb');
  if (!existsSync(dir)) return `no EmoDB at ${dir} (set EMOFUSE_ASSETS to the offline assets folder)`;
  const items = readEmoDB(dir).items.filter((it) => it.audio);
  if (items.length < n) return `EmoDB at ${dir} has ${items.length} clips, ${n} needed`;
  // Evenly spread over the corpus: several speakers and emotions, clip lengths from about 1.5 to 8 s.
  const step = Math.floor(items.length / n);
  const chosen = Array.from({ length: n }, (_, i) => items[i * step]!);
  return { files: chosen.map((it) => it.audio!), texts: chosen.map((it) => it.text) };
}

const isAudio = (spec: string) => /^(logmel|speech|ast)(:|$)/.test(spec);

export function extractCases(_gpu: Gpu, quick: boolean, sets: number, encoders: readonly string[] = EXTRACT_ENCODERS): BenchCase[] {
  const B = quick ? 4 : 16;
  const clips = emodbClips(B * sets);
  const setOf = (set: number) => ({ start: (set % sets) * B, end: (set % sets) * B + B });
  let audio16k: Float32Array[] | null = null;
  const decoded = () => {
    if (typeof clips === 'string') throw new Error(clips);
    return (audio16k ??= clips.files.map((f) => loadAudio(f, { sampleRate: 16_000 })));
  };

  const readCase: BenchCase = {
    suite: 'extract',
    op: 'read audio',
    pass: 'decode+resample',
    shape: { B },
    flops: 0,
    flopsFormula: 'WAV decode (wavefile), down-mix, anti-aliased resample 22.05 -> 16 kHz; rate = clips per second',
    itemsPerRun: B,
    itemUnit: 'utt/s',
    tol: { atol: 0, rtol: 0 },
    reference: () => [decoded()[0]!],
    variants: [
      {
        name: 'read (ours)',
        kind: 'ours',
        device: 'CPU JS',
        async prepare(): Promise<Runner | { skip: string }> {
          if (typeof clips === 'string') return { skip: clips };
          let last: Float32Array[] = [];
          return {
            run(set) {
              const { start, end } = setOf(set);
              last = clips.files.slice(start, end).map((f) => loadAudio(f, { sampleRate: 16_000 }));
            },
            outputs: () => [last[0]!],
          };
        },
      },
    ],
    baseline: 'read (ours)',
  };

  const encoderCase = (spec: string): BenchCase => {
    const audio = isAudio(spec);
    let reference: EncodedBatch | null = null;
    let unavailable = '';
    const create = (): Promise<TextEncoder | AudioEncoder> => (audio ? createAudioEncoder(spec) : createTextEncoder(spec));
    const encode = (enc: TextEncoder | AudioEncoder, set: number): Promise<EncodedBatch> => {
      const { start, end } = setOf(set);
      if (audio) return (enc as AudioEncoder).encode(decoded().slice(start, end));
      if (typeof clips === 'string') throw new Error(clips);
      return (enc as TextEncoder).encode(clips.texts.slice(start, end));
    };
    const variant: Variant = {
      name: `${spec} (ours)`,
      kind: 'ours',
      device: /^(bert|ast|speech)/.test(spec) ? 'ONNX Runtime CPU (onnxruntime-node)' : 'CPU JS',
      async prepare(): Promise<Runner | { skip: string }> {
        if (unavailable) return { skip: unavailable };
        const enc = await create();
        let last: EncodedBatch | null = null;
        return {
          async run(set) {
            last = await encode(enc, set);
          },
          outputs: () => [last!.tokens],
          dispose: () => enc.dispose?.(),
        };
      },
    };
    return {
      suite: 'extract',
      op: `${audio ? 'audio' : 'text'} encoder ${spec}`,
      pass: 'encode',
      shape: { B },
      flops: 0,
      flopsFormula: audio ? `rate = clips per second (audio already at 16 kHz)` : 'rate = transcripts per second',
      itemsPerRun: B,
      itemUnit: 'utt/s',
      tol: DETERMINISM,
      async prepareReference() {
        if (typeof clips === 'string') {
          unavailable = clips;
          return;
        }
        try {
          const enc = await create();
          reference = await encode(enc, 0);
          await enc.dispose?.();
        } catch (err) {
          unavailable = (err as Error).message.split('\n')[0]!;
        }
      },
      reference: () => (reference ? [reference.tokens] : []),
      variants: [variant],
      baseline: variant.name,
    };
  };

  return [readCase, ...encoders.map(encoderCase)];
}
