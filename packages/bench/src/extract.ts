// `bench extract`: utterances per second of each encoder on real speech, a batch of EmoDB clips (22.05 kHz
// WAV files from the offline assets, all 2.00 s in this copy) and their English transcripts, or with
// EMOFUSE_BENCH_CLIPS=ravdess RAVDESS training clips (actors 01-16, 16 kHz FLAC, 3-4 s: the length the whisper window
// goal is stated for) and their sentences. Cases:
//   - reading the audio: WAV decoding, down-mix and anti-aliased resampling to 16 kHz (what every audio
//     encoder is fed; the built-in encoders below are timed on the already resampled clips);
//   - each text encoder (hash, bert[:model]) on B transcripts, each audio encoder (logmel, speech, ast[:model],
//     whisper[:model][@layer]) on B clips;
//   - whisper beside the same encoder in PyTorch (python/whisper_peer.py: transformers' WhisperFeatureExtractor and
//     WhisperModel encoder from the converted model's model.safetensors, the same clips, as many torch threads as
//     onnxruntime's intra-op threads), validated on the same outputs: set 0's pooled tokens. The same window on both
//     sides: `whisper+full` against the usual transformers pipeline (30 s window), `whisper` (sliced, the default)
//     against HF's encoder forward on the sliced window; time the two specs in one run to compare the windows. That comparison is
//     across implementations (numpy vs JS log-mel, PyTorch vs onnxruntime), so this case's tolerance is 1e-4
//     absolute + 1e-3 relative instead of the determinism check's 1e-6 (measured: 5e-6).
// There is no independent reference for an encoder's features here (they are checked against independent
// implementations in test/model/encoders.test.ts: logmel vs a numpy fbank within 5e-6, the transformers.js
// encoders vs PyTorch within 1e-4), so "validation" is a determinism check: the timed encoder must reproduce,
// on input set 0, what a second, separately created instance computes, to 1e-6. A transformers.js model that is
// not available (no weights offline) is skipped with the reason.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Gpu, Tolerance } from '@emofuse/kernels';
import {
  createAudioEncoder,
  createTextEncoder,
  loadAudio,
  locateModel,
  modelSettings,
  parseWhisperSpec,
  readEmoDB,
  readRAVDESS,
  SLICE_STEP,
  usesDevice,
  WHISPER_POOL,
  type AudioEncoder,
  type EncodedBatch,
  type EncoderDevice,
  type TextEncoder,
} from '@emofuse/model';
import type { BenchCase, ExternalResult, Runner, Variant } from './harness.ts';
import { pythonBin } from './torch-peer.ts';

const run = promisify(execFile);

export const EXTRACT_ENCODERS = ['hash', 'bert', 'logmel', 'speech', 'ast', 'whisper', 'whisper+full'] as const;
const CROSS_IMPL: Tolerance = { atol: 1e-4, rtol: 1e-3 }; // measured: max |PyTorch - ours| 5e-6 on EmoDB clips
const DETERMINISM: Tolerance = { atol: 1e-6, rtol: 1e-6 };

interface Clips {
  files: string[];
  texts: string[];
}

function emodbClips(n: number): Clips | string {
  const ravdess = process.env.EMOFUSE_BENCH_CLIPS === 'ravdess';
  const dir = join(modelSettings.assetsDir, ravdess ? 'ravdess' : 'emodb');
  if (!existsSync(dir)) return `no ${ravdess ? 'RAVDESS' : 'EmoDB'} at ${dir} (set EMOFUSE_ASSETS to the offline assets folder)`;
  const items = (ravdess ? readRAVDESS(dir).items.filter((it) => it.split === 'train') : readEmoDB(dir).items).filter((it) => it.audio);
  if (items.length < n) return `${dir} has ${items.length} clips, ${n} needed`;
  // Evenly spread over the corpus: several speakers and emotions.
  const step = Math.floor(items.length / n);
  const chosen = Array.from({ length: n }, (_, i) => items[i * step]!);
  return { files: chosen.map((it) => it.audio!), texts: chosen.map((it) => it.text) };
}

const isAudio = (spec: string) => /^(logmel|speech|ast|whisper)(:|@|\+|$)/.test(spec);

export function extractCases(_gpu: Gpu, quick: boolean, sets: number, encoders: readonly string[] = EXTRACT_ENCODERS): BenchCase[] {
  const B = quick ? 4 : 16;
  const clips = emodbClips(B * sets);
  const setOf = (set: number) => ({ start: (set % sets) * B, end: (set % sets) * B + B });
  let audio16k: Float32Array[] | null = null;
  const decoded = () => {
    if (typeof clips === 'string') throw new Error(clips);
    audio16k ??= clips.files.map((f) => loadAudio(f, { sampleRate: 16_000 }));
    return audio16k;
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
    reference: () => (typeof clips === 'string' ? [] : [decoded()[0]!]), // no clips: every variant skips with the reason
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
    const create = (device: EncoderDevice = 'cpu'): Promise<TextEncoder | AudioEncoder> =>
      audio ? createAudioEncoder(spec, { device }) : createTextEncoder(spec, { device });
    const encode = (enc: TextEncoder | AudioEncoder, set: number): Promise<EncodedBatch> => {
      const { start, end } = setOf(set);
      if (audio) return (enc as AudioEncoder).encode(decoded().slice(start, end));
      if (typeof clips === 'string') throw new Error(clips);
      return (enc as TextEncoder).encode(clips.texts.slice(start, end));
    };
    // a timed encoder: each run encodes one set, its tokens are the run's output
    const runner = (enc: TextEncoder | AudioEncoder): Runner => {
      let last: EncodedBatch | null = null;
      return {
        async run(set) {
          last = await encode(enc, set);
        },
        outputs: () => [last!.tokens],
        dispose: () => enc.dispose?.(),
      };
    };
    const variant: Variant = {
      name: `${spec} (ours)`,
      kind: 'ours',
      device: /^(bert|ast|speech|whisper)/.test(spec) ? 'ONNX Runtime CPU (onnxruntime-node)' : 'CPU JS',
      async prepare(): Promise<Runner | { skip: string }> {
        if (unavailable) return { skip: unavailable };
        return runner(await create());
      },
    };
    // the same network on onnxruntime-node's WebGPU execution provider (extract --device webgpu), checked against the CPU's tokens
    const webgpu: Variant = {
      name: `${spec} --device webgpu`,
      kind: 'ours',
      device: 'ONNX Runtime WebGPU EP (Dawn)',
      async prepare(): Promise<Runner | { skip: string }> {
        if (unavailable) return { skip: unavailable };
        let enc: TextEncoder | AudioEncoder;
        try {
          enc = await create('webgpu');
        } catch (err) {
          return { skip: `no WebGPU for onnxruntime: ${(err as Error).message.split('\n')[0]}` };
        }
        return runner(enc);
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
      tol: usesDevice(spec) ? CROSS_IMPL : DETERMINISM, // WebGPU and PyTorch differ from our CPU run by rounding
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
      variants: [
        variant,
        ...(usesDevice(spec) ? [webgpu] : []),
        ...(/^whisper/.test(spec) ? [whisperTorchVariant(spec, B, sets, () => decoded(), setOf)] : []),
      ],
      baseline: variant.name,
    };
  };

  return [readCase, ...encoders.map(encoderCase)];
}

/** The same Whisper encoder in PyTorch (python/whisper_peer.py); skipped with the reason without torch/transformers
 * or without the converted model's model.safetensors. */
function whisperTorchVariant(
  spec: string,
  B: number,
  sets: number,
  decoded: () => Float32Array[],
  setOf: (s: number) => { start: number; end: number },
): Variant {
  return {
    name: `${spec} (PyTorch)`,
    kind: 'peer',
    device: 'PyTorch CPU',
    async prepare({ warmup, iterations }): Promise<ExternalResult | { skip: string }> {
      const script = fileURLToPath(new URL('../python/whisper_peer.py', import.meta.url));
      const alt = fileURLToPath(new URL('../../bench/python/whisper_peer.py', import.meta.url));
      const path = existsSync(script) ? script : alt;
      if (!existsSync(path)) return { skip: 'packages/bench/python/whisper_peer.py not found' };
      const { model, layer, window } = parseWhisperSpec(spec.replace(/^whisper:?/, ''));
      let folder: string;
      try {
        folder = locateModel(model, 'whisper-encoder').folder ?? '';
      } catch (err) {
        return { skip: (err as Error).message.split('\n')[0]! };
      }
      if (!folder || !existsSync(join(folder, 'model.safetensors')))
        return { skip: `no PyTorch weights (${join(folder || model, 'model.safetensors')}): scripts/convert_whisper.py writes them` };
      const L =
        layer === 'last'
          ? (JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as { encoder_layers: number }).encoder_layers
          : layer;
      const py = pythonBin();
      try {
        await run(py, ['-c', 'import torch, transformers'], { timeout: 120_000 });
      } catch {
        return { skip: `no PyTorch + transformers in ${py} (set EMOFUSE_PYTHON to a venv with torch==2.13.0 and transformers<5)` };
      }
      const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-whisper-'));
      try {
        const clips = decoded();
        for (let s = 0; s < sets; s++) {
          const { start } = setOf(s);
          for (let b = 0; b < B; b++) writeFileSync(join(dir, `clip-${s}-${b}.f32`), clips[start + b]!);
        }
        const threads = availableParallelism();
        writeFileSync(
          join(dir, 'job.json'),
          JSON.stringify({
            model_dir: folder,
            layer: L,
            pool: WHISPER_POOL,
            threads,
            sets,
            batch: B,
            warmup,
            iterations,
            window,
            slice_step: SLICE_STEP,
          }),
        );
        try {
          await run(py, [path, dir], { timeout: 900_000, maxBuffer: 16 << 20 });
        } catch (err) {
          const msg = String((err as { stderr?: string }).stderr || (err as Error).message)
            .trim()
            .split('\n')
            .pop();
          throw new Error(`whisper_peer.py failed: ${msg}`);
        }
        const res = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
          samples_ms: number[];
          torch: string;
          transformers: string;
          threads: number;
        };
        const b = readFileSync(join(dir, 'out-0.f32'));
        return {
          external: true,
          samples: res.samples_ms,
          outputs: [new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)],
          version: `torch ${res.torch}, transformers ${res.transformers}`,
          note: `${
            window === 'full'
              ? 'the transformers pipeline, 30 s window'
              : `sliced window (HF's encoder forward on a cut positional table, stopped after layer ${L})`
          }; ${res.threads} threads (onnxruntime: ${threads} intra-op)`,
        };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
