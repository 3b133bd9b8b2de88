// `whisper[:<model id or folder>][@<layer>|@all][+full]`: the hidden states of one layer of a Whisper encoder as audio
// tokens, or with '@all' of every layer: the embeddings (layer 0) and layers 1..L, each pooled alike, stored as one token
// of [L+1, C] (width (L+1)*C, the layer axis outer; the cache index records `layers: L+1`), for the fusion model's
// learned mix of layers (audio.layerMix, as SUPERB's and EmoBox's weighted sum of hidden states).
//
// Where the model comes from: like the other transformers.js models (a folder path, then <EMOFUSE_MODELS>/<id>/,
// else a download by id unless EMOFUSE_OFFLINE is set), in the layout the hub serves (Xenova/whisper-tiny.en,
// onnx-community/whisper-base): preprocessor_config.json, config.json, onnx/encoder_model.onnx. Layers other than the
// last need onnx/encoder_hidden_states.onnx (input_features -> hidden_states [B, L+1, 1500, C]: the embeddings, then
// each layer's output, the last one layer-normed), which scripts/convert_whisper.py writes beside the hub's files;
// without it only `@last` (encoder_model.onnx's last_hidden_state) is available.
//
// Whisper's encoder always sees a 30 s window: the feature extractor pads the 80-bin log-mel to 3000 frames (10 ms
// each) and the two convolutions (the second with stride 2) give 1500 frames, 50 per second. We keep only the frames
// that cover the real audio, ceil(samples / 320), so the zero padding never becomes tokens, and average each run of
// POOL = 4 frames into one token: 12.5 tokens per second (80 ms each). Why 4: the other audio encoders give 10
// (logmel, AST) and 12.5 (speech) tokens per second, so the fusion model's audio length and attention cost stay the
// same whichever encoder fed it (a 30 s clip is 375 tokens, not 1500), and 80 ms is still finer than a syllable
// (~200 ms), the unit prosody varies on. Clips longer than 30 s are cut there.
//
// The window (default 'sliced'): with '+full' the encoder runs on the whole 30 s window as above (every clip pays for
// 1,500 frames and every layer). Sliced, as whisper.cpp's audio_ctx: the encoder runs on only the clip's own mel
// frames, its window rounded up to SLICE_STEP = 8 encoder frames (160 ms, two tokens), with the positional table
// sliced to that window, and stops at the layer asked for (sliceEncoder rewrites encoder_model.onnx: a dynamic frame
// axis, the positional table sliced to the input's length, the graph cut after the layer). The features change
// (attention no longer sees 26 s of padding), so the version says which window made them and the cache records it.
// Clips whose windows are equal run as one batch; a clip's features never depend on the others in its batch.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { modelSettings } from './settings.ts';
import { ENCODER_SESSION, loadTransformers } from './transformers-env.ts';
import { locateModel, ModelNotFoundError, withLocation, type Located } from './transformers.ts';
import { padSequences, type AudioEncoder, type EncodedBatch } from './types.ts';
import type { EncoderDevice } from './device.ts';

export const DEFAULT_WHISPER = 'Xenova/whisper-tiny.en';
/** Chosen on EmoDB's dev speakers (10, 14) with a linear probe per layer; see the README's encoder table. */
export const DEFAULT_WHISPER_LAYER = 2;
/** Encoder frames (50 per second) averaged into one token: 12.5 tokens per second. */
export const WHISPER_POOL = 4;
const SAMPLES_PER_FRAME = 320; // 16 kHz / 50 frames per second
const WINDOW_SAMPLES = 30 * 16_000;
export const STATES_FILE = 'onnx/encoder_hidden_states.onnx';
/** Which stretch of audio the encoder attends over: only the clip's own frames, or Whisper's whole 30 s window. */
export type WhisperWindow = 'sliced' | 'full';
/** Chosen on EmoDB speaker folds and RAVDESS dev (the README's encoder table): as accurate, several times faster. */
export const DEFAULT_WHISPER_WINDOW: WhisperWindow = 'sliced';
/** A sliced window is the clip's covered frames rounded up to this many encoder frames (160 ms, 2 tokens). */
export const SLICE_STEP = 8;

export interface WhisperSpec {
  model: string;
  /** 0 = the embeddings (convolutions + positions), 1..L = that layer's output; 'last' = L (also with `all`). */
  layer: number | 'last';
  window: WhisperWindow;
  /** '@all': every layer 0..L, each token [L+1, C] (absent otherwise). */
  all?: true;
}

/** 'whisper', 'whisper@3', 'whisper:Xenova/whisper-base@last', 'whisper:/abs/folder@1', 'whisper@2+full',
 * 'whisper:Xenova/whisper-base@all' (the part after 'whisper:'). */
export function parseWhisperSpec(arg: string): WhisperSpec {
  const m = /^(.*?)(?:@([^@/+]*))?(?:\+(full|sliced))?$/.exec(arg)!;
  const model = m[1] || DEFAULT_WHISPER;
  const window = (m[3] as WhisperWindow | undefined) ?? DEFAULT_WHISPER_WINDOW;
  const at = m[2];
  if (at === undefined || at === '') return { model, layer: at === '' ? NaN : DEFAULT_WHISPER_LAYER, window };
  if (at === 'all') return { model, layer: 'last', window, all: true };
  if (at === 'last') return { model, layer: 'last', window };
  if (!/^\d+$/.test(at)) return { model, layer: NaN, window };
  return { model, layer: Number(at), window };
}

/** The encoder frames a sliced run computes for a clip: its covered frames rounded up to SLICE_STEP, at most 1500. */
export function slicedWindow(samples: number): number {
  return Math.min(1500, Math.ceil(coveredFrames(samples) / SLICE_STEP) * SLICE_STEP);
}

export interface WhisperEncoderOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** Ignore onnx/encoder_hidden_states.onnx, as with the hub's layout (tests the tapped encoder_model.onnx). */
  hubLayout?: boolean;
  /** onnxruntime execution provider: 'cpu' (default) or 'webgpu' (./device.ts). */
  device?: EncoderDevice;
}

/** Runs a Whisper encoder and returns, per clip, the frames of every requested layer that cover the audio. */
export interface WhisperStates {
  layers: number;
  dim: number;
  /** clips -> for each clip, [L+1] arrays of [frames, C] (only the layers asked for are filled). */
  run(clips: readonly Float32Array[], wanted: readonly number[]): Promise<{ frames: number; states: (Float32Array | null)[] }[]>;
  dispose(): Promise<void>;
  version: string;
}

type Ort = typeof import('onnxruntime-node');
type Callable = ((...args: unknown[]) => Promise<unknown>) & { dispose?: () => Promise<void> };

/** Frames of the 50/s encoder output that cover `samples` of 16 kHz audio (at least 1, at most 1500). */
export function coveredFrames(samples: number): number {
  return Math.max(1, Math.min(1500, Math.ceil(Math.min(samples, WINDOW_SAMPLES) / SAMPLES_PER_FRAME)));
}

/** Averages runs of `pool` frames of [frames, C] -> [ceil(frames / pool), C] (the last run may be shorter). */
export function poolFrames(x: Float32Array, frames: number, C: number, pool: number): { data: Float32Array; length: number } {
  const T = Math.ceil(frames / pool);
  const out = new Float32Array(T * C); // [T, C]
  for (let t = 0; t < T; t++) {
    const f0 = t * pool;
    const f1 = Math.min(frames, f0 + pool);
    for (let f = f0; f < f1; f++) for (let c = 0; c < C; c++) out[t * C + c]! += x[f * C + c]!;
    for (let c = 0; c < C; c++) out[t * C + c]! /= f1 - f0;
  }
  return { data: out, length: T };
}

function fileFingerprint(h: ReturnType<typeof createHash>, file: string): void {
  const bytes = readFileSync(file);
  h.update(String(statSync(file).size));
  h.update(bytes.subarray(0, 1 << 20));
  h.update(bytes.subarray(Math.max(0, bytes.length - (1 << 20))));
}

/** Loads the feature extractor and the encoder ONNX file(s) of a located Whisper model. */
/** The output of encoder layer l (1-based; HF hidden_states[l]) in optimum's / torch.onnx's export of WhisperEncoder:
 * the second residual Add of block l - 1, '/layers.<l-1>/Add_1_output_0' (under a prefix when the encoder was
 * wrapped, e.g. '/m/layers.0/Add_1_output_0'). */
const layerTensor = (l: number) => new RegExp(`(^|/)layers\\.${l - 1}/Add_1_output_0$`);

/** encoder_model.onnx with one more graph output: layer l's states [B, 1500, C] (the hub's layout, no states file). */
async function tapEncoder(file: string, l: number, spec: string): Promise<{ bytes: Uint8Array; output: string }> {
  const { createRequire } = await import('node:module');
  const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');
  const model = onnx.ModelProto.decode(readFileSync(file));
  const pattern = layerTensor(l);
  const name = model.graph?.node?.flatMap((n) => n.output ?? []).find((o) => pattern.test(o));
  if (!name) {
    throw new ModelNotFoundError(
      `${spec}: ${file} has no tensor '/layers.${l - 1}/Add_1_output_0' (layer ${l}'s output in optimum's export); ` +
        `add onnx/encoder_hidden_states.onnx (scripts/convert_whisper.py writes one) or ask for '@last'`,
    );
  }
  model.graph!.output!.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }));
  return { bytes: onnx.ModelProto.encode(model).finish(), output: name };
}

/** encoder_model.onnx rewritten for a sliced window (whisper.cpp's audio_ctx): the mel frame axis of input_features
 * made dynamic ([B, 80, 2W]), the positional table [1500, C] sliced to the W frames the convolutions give
 * (Shape -> Slice before the positional Add), one output per wanted layer (0: the embeddings, the positional Add's
 * output; 1..L-1: '/layers.<l-1>/Add_1_output_0'; L: last_hidden_state, layer-normed as in the states file), and
 * every node no output needs dropped, so the run stops at the deepest layer asked for. Works on optimum's export
 * (ours and the hub's): the only fixed length in it is the positional table; reshapes take their sizes from Shape. */
export async function sliceEncoder(
  file: string,
  wanted: readonly number[],
  L: number,
  spec: string,
): Promise<{ bytes: Uint8Array; outputs: Map<number, string> }> {
  const { createRequire } = await import('node:module');
  const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');
  const model = onnx.ModelProto.decode(readFileSync(file));
  const g = model.graph!;
  const nodes = g.node ?? [];
  const initDims = new Map((g.initializer ?? []).map((t) => [t.name!, (t.dims ?? []).map(Number)]));
  for (const n of nodes)
    if (n.opType === 'Constant') initDims.set(n.output![0]!, (n.attribute?.find((a) => a.name === 'value')?.t?.dims ?? []).map(Number));
  const isTable = (name: string) => initDims.get(name)?.length === 2 && initDims.get(name)![0] === 1500;
  const posAt = nodes.findIndex((n) => n.opType === 'Add' && n.input!.some(isTable));
  if (posAt < 0)
    throw new ModelNotFoundError(
      `${spec}: ${file} has no Add of a [1500, C] positional table, so its window cannot be sliced; add '+full' to the spec`,
    );
  const pos = nodes[posAt]!;
  const k = pos.input!.findIndex(isTable);
  const [table, x] = [pos.input![k]!, pos.input![1 - k]!]; // [1500, C], [B, W, C]
  const p = 'emofuse_slice/';
  const int64 = (name: string, v: number) =>
    onnx.TensorProto.create({ name: p + name, dims: [1], dataType: onnx.TensorProto.DataType.INT64, int64Data: [v] });
  g.initializer!.push(int64('zero', 0), int64('one', 1), int64('two', 2));
  const node = (opType: string, input: string[], output: string) =>
    onnx.NodeProto.create({ opType, name: p + output, input, output: [p + output] });
  const slice = [
    node('Shape', [x], 'shape'), // [3] = (B, W, C)
    node('Slice', [p + 'shape', p + 'one', p + 'two', p + 'zero'], 'frames'), // [1] = (W)
    node('Slice', [table, p + 'zero', p + 'frames', p + 'zero'], 'positions'), // [W, C]
  ];
  pos.input![k] = p + 'positions';
  nodes.splice(posAt, 0, ...slice);
  const names = new Map<number, string>();
  for (const l of wanted) {
    if (l === 0) names.set(l, pos.output![0]!);
    else if (l === L) names.set(l, g.output![0]!.name!);
    else {
      const pattern = layerTensor(l);
      const name = nodes.flatMap((n) => n.output ?? []).find((o) => pattern.test(o));
      if (!name)
        throw new ModelNotFoundError(
          `${spec}: ${file} has no tensor '/layers.${l - 1}/Add_1_output_0' (layer ${l}'s output in optimum's export); ask for ` +
            `'@last' or add '+full'`,
        );
      names.set(l, name);
    }
  }
  const input = g.input!.find((i) => i.name === 'input_features');
  const dim = input?.type?.tensorType?.shape?.dim;
  if (dim?.length !== 3) throw new ModelNotFoundError(`${spec}: ${file} has no input_features [B, mel bins, frames]`);
  dim[2] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'mel_frames' });
  g.output = [...new Set(names.values())].map((name) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }),
  );
  g.valueInfo = []; // shapes recorded for the 1500-frame trace
  // keep only what the outputs need (walking the topologically ordered nodes backwards)
  const needed = new Set(g.output.map((o) => o.name!));
  g.node = nodes
    .reverse()
    .filter((n) => (n.output ?? []).some((o) => needed.has(o)) && (n.input ?? []).every((i) => needed.add(i)))
    .reverse();
  g.initializer = g.initializer!.filter((t) => needed.has(t.name!));
  return { bytes: onnx.ModelProto.encode(model).finish(), outputs: names };
}

/** A sliced-window Whisper encoder (see the file comment) giving `layers` (each 0..L); built from encoder_model.onnx,
 * which both layouts have. */
export async function loadSlicedWhisper(
  loc: Located,
  spec: string,
  layers: readonly number[],
  options: WhisperEncoderOptions = {},
): Promise<WhisperStates> {
  const { AutoFeatureExtractor } = await loadTransformers();
  const extractor = (await withLocation(loc, (n) => AutoFeatureExtractor.from_pretrained(n))) as unknown as Callable;
  const folder = loc.folder!;
  const cfg = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as {
    encoder_layers?: number;
    d_model?: number;
    num_mel_bins?: number;
  };
  if (!cfg.encoder_layers || !cfg.d_model)
    throw new ModelNotFoundError(`${join(folder, 'config.json')} has no encoder_layers/d_model: is this a Whisper model?`);
  const L = cfg.encoder_layers;
  const C = cfg.d_model;
  const bins = cfg.num_mel_bins ?? 80;
  const file = join(folder, 'onnx', 'encoder_model.onnx');
  const { bytes, outputs } = await sliceEncoder(file, layers, L, spec);
  const ort: Ort = await import('onnxruntime-node');
  const threads = options.threads ?? availableParallelism();
  const session = await ort.InferenceSession.create(bytes, {
    ...ENCODER_SESSION,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionProviders: [options.device ?? 'cpu'],
  });
  const h = createHash('sha256');
  h.update(readFileSync(join(folder, 'config.json')));
  h.update(readFileSync(join(folder, 'preprocessor_config.json')));
  fileFingerprint(h, file);
  return {
    layers: L,
    dim: C,
    version: `${spec}@${h.digest('hex').slice(0, 16)}`,
    async run(clips, wanted) {
      for (const l of wanted)
        if (!outputs.has(l)) throw new Error(`this sliced encoder gives layers ${[...outputs.keys()].join(', ')}, not ${l}`);
      const fetch = [...new Set(wanted.map((l) => outputs.get(l)!))];
      const result: { frames: number; states: (Float32Array | null)[] }[] = new Array(clips.length);
      // clips with the same window run as one batch
      const groups = new Map<number, number[]>();
      clips.forEach((clip, b) => {
        const W = slicedWindow(clip.length);
        groups.set(W, [...(groups.get(W) ?? []), b]);
      });
      for (const [W, members] of groups) {
        const G = members.length;
        const input = new Float32Array(G * bins * 2 * W); // [G, 80, 2W]: the first 2W of the 3000 mel frames
        // The log-mel of only the window (the STFT of 30 s cost more than the sliced encoder): the clip zero-padded to
        // 2W hops + 400 samples, so every frame kept sees the samples and zeros it sees in the 30 s window (no reflection
        // at the end); the frames past the clip are silence in both, below the maximum the log-mel is clamped against.
        // (A 1500-frame window is the 30 s window itself: its last frame sees the reflection past 30 s, so the usual call.)
        const padded = W < 1500 ? { max_length: W * SAMPLES_PER_FRAME + 400 } : {}; // 2W mel hops of 160 samples, and 400 more
        for (let g = 0; g < G; g++) {
          const clip = clips[members[g]!]!;
          const { input_features } = (await extractor(clip.length > WINDOW_SAMPLES ? clip.subarray(0, WINDOW_SAMPLES) : clip, padded)) as {
            input_features: { data: Float32Array; dims: number[] };
          };
          const frames = input_features.dims[2]!; // [1, 80, frames >= 2W]
          if (input_features.dims[1] !== bins || frames < 2 * W)
            throw new Error(`Whisper features of ${input_features.dims.join('x')}, expected 1x${bins}x(>= ${2 * W})`);
          for (let m = 0; m < bins; m++) input.set(input_features.data.subarray(m * frames, m * frames + 2 * W), (g * bins + m) * 2 * W);
        }
        const out = await session.run({ input_features: new ort.Tensor('float32', input, [G, bins, 2 * W]) }, fetch);
        members.forEach((b, g) => {
          const frames = coveredFrames(clips[b]!.length);
          const states: (Float32Array | null)[] = Array.from({ length: L + 1 }, () => null);
          for (const l of wanted) {
            const data = out[outputs.get(l)!]!.data as Float32Array; // [G, W, C]
            if (data.length !== G * W * C)
              throw new Error(`${file} (sliced) gave ${out[outputs.get(l)!]!.dims.join('x')} for layer ${l}, expected ${G}x${W}x${C}`);
            states[l] = data.slice(g * W * C, (g * W + frames) * C); // [frames, C]
          }
          result[b] = { frames, states };
        });
        for (const v of Object.values(out)) (v as { dispose?: () => void }).dispose?.();
      }
      return result;
    },
    async dispose() {
      await session.release();
      await (extractor as { dispose?: () => Promise<void> }).dispose?.();
    },
  };
}

/** Loads the feature extractor and the encoder of a located Whisper model for one layer (or 'all': every layer,
 * which needs onnx/encoder_hidden_states.onnx). Without that file, the last layer is encoder_model.onnx's
 * last_hidden_state and any other layer >= 1 is tapped out of encoder_model.onnx (tapEncoder). */
export async function loadWhisperStates(
  loc: Located,
  spec: string,
  layer: number | 'all',
  options: WhisperEncoderOptions = {},
): Promise<WhisperStates> {
  const { AutoFeatureExtractor } = await loadTransformers();
  const extractor = (await withLocation(loc, (n) => AutoFeatureExtractor.from_pretrained(n))) as unknown as Callable;
  const folder = loc.folder!;
  const cfg = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as {
    encoder_layers?: number;
    d_model?: number;
    num_mel_bins?: number;
  };
  if (!cfg.encoder_layers || !cfg.d_model)
    throw new ModelNotFoundError(`${join(folder, 'config.json')} has no encoder_layers/d_model: is this a Whisper model?`);
  const L = cfg.encoder_layers;
  const C = cfg.d_model;
  const statesPath = join(folder, STATES_FILE);
  const lastPath = join(folder, 'onnx', 'encoder_model.onnx');
  const useStates = !options.hubLayout && existsSync(statesPath);
  if (!useStates && (layer === 'all' || layer === 0)) {
    throw new ModelNotFoundError(
      `${spec}: ${layer === 0 ? 'layer 0 (the embeddings)' : 'every layer at once'} needs ${statesPath} (all of the encoder's ` +
        `hidden states), which the hub's layout lacks; ` +
        `write it with 'python3 scripts/convert_whisper.py' (tiny.en) or ask for a layer from 1 to ${L} or '@last'`,
    );
  }
  const file = useStates ? statesPath : lastPath;
  const ort: Ort = await import('onnxruntime-node');
  const threads = options.threads ?? availableParallelism();
  const sessionOptions = {
    ...ENCODER_SESSION,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionProviders: [options.device ?? 'cpu'],
  };
  const single = useStates ? null : (layer as number);
  const tapped = single !== null && single !== L ? await tapEncoder(lastPath, single, spec) : null;
  const session = tapped
    ? await ort.InferenceSession.create(tapped.bytes, sessionOptions)
    : await ort.InferenceSession.create(file, sessionOptions);
  const outputName = tapped ? tapped.output : session.outputNames[0]!;
  const h = createHash('sha256');
  h.update(readFileSync(join(folder, 'config.json')));
  h.update(readFileSync(join(folder, 'preprocessor_config.json')));
  fileFingerprint(h, file);
  return {
    layers: L,
    dim: C,
    version: `${spec}@${h.digest('hex').slice(0, 16)}`,
    async run(clips, wanted) {
      const B = clips.length;
      const bins = cfg.num_mel_bins ?? 80;
      const input = new Float32Array(B * bins * 3000); // [B, 80, 3000]
      for (let b = 0; b < B; b++) {
        const clip = clips[b]!.length > WINDOW_SAMPLES ? clips[b]!.subarray(0, WINDOW_SAMPLES) : clips[b]!;
        const { input_features } = (await extractor(clip)) as { input_features: { data: Float32Array; dims: number[] } };
        if (input_features.data.length !== bins * 3000)
          throw new Error(`Whisper features of ${input_features.dims.join('x')}, expected 1x${bins}x3000`);
        input.set(input_features.data, b * bins * 3000);
      }
      const out = await session.run({ input_features: new ort.Tensor('float32', input, [B, bins, 3000]) }, [outputName]);
      const t = out[outputName]!;
      const data = t.data as Float32Array;
      const per = useStates ? L + 1 : 1; // [B, L+1, 1500, C] or [B, 1500, C]
      if (data.length !== B * per * 1500 * C)
        throw new Error(`${file} gave ${t.dims.join('x')}, expected ${B}x${useStates ? `${per}x` : ''}1500x${C}`);
      const result = clips.map((clip, b) => {
        const frames = coveredFrames(clip.length);
        const states: (Float32Array | null)[] = Array.from({ length: L + 1 }, () => null);
        for (const l of wanted) {
          const slot = useStates ? l : 0;
          if (single !== null && l !== single) throw new Error(`this encoder session gives layer ${single}, not ${l}`);
          const start = (b * per + slot) * 1500 * C;
          states[l] = data.slice(start, start + frames * C); // [frames, C]
        }
        return { frames, states };
      });
      for (const v of Object.values(out)) (v as { dispose?: () => void }).dispose?.();
      return result;
    },
    async dispose() {
      await session.release();
      await (extractor as { dispose?: () => Promise<void> }).dispose?.();
    },
  };
}

/** A hub model by id: the files the encoder needs, downloaded once into <EMOFUSE_CACHE>/<id>/ (the same host
 * transformers.js downloads from). Only reached when EMOFUSE_OFFLINE is not set and no local folder has the model. */
async function downloadToCache(id: string): Promise<Located> {
  const { env } = await loadTransformers();
  const folder = join(modelSettings.cacheDir, 'whisper-encoders', id);
  for (const f of ['config.json', 'preprocessor_config.json', 'onnx/encoder_model.onnx']) {
    const dest = join(folder, f);
    if (existsSync(dest)) continue;
    const url = `${env.remoteHost.replace(/\/$/, '')}/${id}/resolve/main/${f}`;
    const res = await fetch(url).catch((err: Error) => ({ ok: false, status: 0, statusText: err.message }) as const);
    if (!res.ok || !('arrayBuffer' in res)) {
      throw new ModelNotFoundError(
        `cannot download ${url} (${res.status} ${res.statusText}): put the model in ${join(modelSettings.modelsDir, id)} instead`,
      );
    }
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest + '.part', Buffer.from(await res.arrayBuffer()));
    renameSync(dest + '.part', dest);
  }
  return { name: basename(folder), localModelPath: dirname(folder) + '/', folder };
}

export async function createWhisperEncoder(arg = '', options: WhisperEncoderOptions = {}): Promise<AudioEncoder> {
  const { model, layer, window, all = false } = parseWhisperSpec(arg);
  const id = !arg ? 'whisper' : arg.startsWith('@') ? `whisper${arg}` : `whisper:${arg}`;
  if (Number.isNaN(layer))
    throw new ModelNotFoundError(`audio encoder '${id}': the part after '@' must be a layer number (0 = embeddings), 'last' or 'all'`);
  const found = locateModel(model, 'whisper-encoder');
  const loc = found.folder ? found : await downloadToCache(model);
  const cfgLayers = (JSON.parse(readFileSync(join(loc.folder!, 'config.json'), 'utf8')) as { encoder_layers?: number }).encoder_layers;
  const want = layer === 'last' ? (cfgLayers ?? 0) : layer;
  if (cfgLayers !== undefined && (want < 0 || want > cfgLayers)) {
    throw new ModelNotFoundError(
      `audio encoder '${id}': ${model} has ${cfgLayers} encoder layers; ` +
        `ask for @0 (embeddings) to @${cfgLayers} or @last, or @all (every layer)`,
    );
  }
  const wanted = all ? Array.from({ length: want + 1 }, (_, l) => l) : [want];
  const states =
    window === 'sliced'
      ? await loadSlicedWhisper(loc, model, wanted, options)
      : await loadWhisperStates(loc, model, all ? 'all' : want, options);
  const L = layer === 'last' ? states.layers : want;
  const C = states.dim;
  const layers = all ? L + 1 : 1; // layers per token
  const which = all ? `layers0-${L}` : `layer${L}`;
  return {
    modality: 'audio',
    id,
    window,
    ...(all ? { layers } : {}),
    // full: today's features, the version unchanged; sliced: a different feature, so a different version
    version:
      window === 'full'
        ? `whisper-v1:${which}:frames50/s:mean${WHISPER_POOL}:${states.version}`
        : `whisper-v2:${which}:sliced${SLICE_STEP}:frames50/s:mean${WHISPER_POOL}:${states.version}`,
    dim: layers * C,
    sampleRate: 16000,
    async encode(clips): Promise<EncodedBatch> {
      const runs = await states.run(clips, all ? wanted : [L]);
      if (!all)
        return padSequences(
          runs.map((r) => poolFrames(r.states[L]!, r.frames, C, WHISPER_POOL)),
          C,
        );
      // every layer pooled alike, interleaved into tokens of [layers, C]
      const seqs = runs.map((r) => {
        const pooled = wanted.map((l) => poolFrames(r.states[l]!, r.frames, C, WHISPER_POOL)); // [layers] x [T, C]
        const T = pooled[0]!.length;
        const data = new Float32Array(T * layers * C); // [T, layers, C]
        for (let t = 0; t < T; t++)
          for (let l = 0; l < layers; l++) data.set(pooled[l]!.data.subarray(t * C, (t + 1) * C), (t * layers + l) * C);
        return { data, length: T };
      });
      return padSequences(seqs, layers * C);
    },
    dispose: () => states.dispose(),
  };
}
