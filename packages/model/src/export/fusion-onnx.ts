// The trained fusion model as an ONNX graph: the model's own inference forward (fusion/model.ts, eval mode: no
// dropout), recorded on the ort backend, where every op is a small ONNX graph and a forward is recorded into one
// graph (onnx/recorder.ts), then made standalone: the parameters become initializers named as FusionModel names
// them, the batch tensors come from the graph inputs below. There is one forward: a change to the model or to one of
// the ort backend's ops reaches the export with nothing written a second time. Any runtime with ONNX opset 20
// (Gelu: the fusion head's tanh form, a fine-tuned text encoder's exact erf form) runs it: onnxruntime CPU / web / mobile.
//
//   inputs:  text [batch, text_len, Ct], text_mask [batch, text_len], audio [batch, audio_len, Ca],
//            audio_mask [batch, audio_len]   (masks: 1 keep, 0 padding; lengths up to the model's Tt / Ta)
//            (a model with a learned mix of La audio layers, Whisper '@all': audio [batch, audio_len, La, Ca / La])
//   outputs: logits [batch, K_cls], probabilities [batch, K_cls] (softmax of the logits)
//
// Dynamic shapes: the recorder feeds every number that depends on the batch's shape (Reshape targets, slice bounds)
// as an int64 input, so the graph is the same at every shape. The forward is traced at the 8 corners of a grid of
// (B, Tt, Ta) and at one more point; the traces must be byte-identical graphs, and each fed number is fitted as a
// product-sum of B, Tt, Ta (onnx/sizes.ts: B*Tt*C, Tt + Ta, Ta*C), checked on the ninth trace and computed here from
// the Shape of the masks. An op that bakes a shape into its graph another way makes the traces differ: an
// ExportError, to be fixed in that op. The audio positions are read as their first audio_len rows.
// Input standardization (fusion/input-norm.ts) and the pooled statistics of the `linear` head and of the linear
// skip are computed on the host in FusionModel.setInputs, so they are not in the trace: they are the graph's first
// ops (kept tokens (x - mean) / std, padding 0; [mean, std] over kept tokens, standardized by norm.pooled).
// Metadata (`metadata_props`): class names, encoder ids, the fusion config, and `emofuse` (all of it as JSON).
//
// A fine-tuned text model (train --finetune-text) exports with its text encoder in the graph: the same trace, of the
// encoder's forward (fusion/text-encoder.ts on the ort backend) feeding the head (encodeBatch, the one place they meet),
// with token ids instead of text features:
//   inputs:  input_ids [batch, text_len] int64 (the tokenizer of metadata `tokenizer`: [CLS] ... [SEP], padding
//            anywhere masked), text_mask [batch, text_len], audio and audio_mask as above
// positions 0..text_len-1 and token type 0 are made in the graph (single sentences, as the encoder trains); every
// encoder weight (the trained delta over the base model's) is an initializer named 'text.<HF name>'. Metadata
// `text_input` says which kind of graph it is ('features' or 'token_ids').

import { CpuBackend } from '../fusion/backend-cpu.ts';
import { OrtBackend, type TracedFeed } from '../fusion/backend-ort.ts';
import type { InputNorm, NormStats } from '../fusion/input-norm.ts';
import { FUSION_SPECS, FusionModel, type FusionConfig, type FusionSpec } from '../fusion/model.ts';
import { type TextEncoderConfig, TrainableTextEncoder } from '../fusion/text-encoder.ts';
import { OnnxGraph } from '../onnx/graph.ts';
import { encodeBatch } from '../train/finetune-text.ts';
import { SizeExprs, addPolys, fitSizes, gridCorners, type SizePoint, type SizePoly } from '../onnx/sizes.ts';
import type { CheckpointMeta } from '../train/checkpoint.ts';

/** A checkpoint that cannot be exported (the message names the tensor or setting). */
export class ExportError extends Error {
  override name = 'ExportError';
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export const ONNX_INPUTS = ['text', 'text_mask', 'audio', 'audio_mask'] as const;
/** The inputs of a graph with its text encoder in it (a fine-tuned text model). */
export const ONNX_TOKEN_INPUTS = ['input_ids', 'text_mask', 'audio', 'audio_mask'] as const;
export const ONNX_OUTPUTS = ['logits', 'probabilities'] as const;

/** The batch shapes the forward is traced at: the corners of this grid, and CHECK. */
const GRID = { B: [2, 3], Tt: [5, 6], Ta: [9, 10] } as const;
const CHECK: SizePoint = { B: 4, Tt: 8, Ta: 13 };
const SIZES = Object.keys(GRID);

export interface FusionOnnxOptions {
  /** The checkpoint's input standardization (`norm.*` tensors), or null when it reads its inputs as they are. */
  norm?: InputNorm | null;
  producerVersion?: string;
  /** The text encoder to put in the graph (a fine-tuned text model): its inputs are then token ids. */
  textEncoder?: OnnxTextEncoder;
}

/** A BERT text encoder for the graph: its shape, every weight by HF name, and the tokenizer its ids come from. */
export interface OnnxTextEncoder {
  config: TextEncoderConfig;
  weights: ReadonlyMap<string, Float32Array>;
  /** The encoder id whose tokenizer makes input_ids (e.g. bert:sentence-transformers/all-MiniLM-L6-v2). */
  tokenizer: string;
}

/** One trace of the inference forward at batch shape p: the graph (not run), what it reads, and the logits. */
interface Trace {
  graph: OnnxGraph;
  bytes: Uint8Array;
  feeds: TracedFeed[];
  logits: string;
  /** The text encoder's parameter shapes by label ('text.<HF name>'), when it is in the graph. */
  encoderShapes: Map<string, number[]>;
}

/**
 * The forward of a model of config c (its lengths set to p's, so no batch runs on views) recorded at batch shape p;
 * with a text encoder, the encoder's forward from token ids first (encodeBatch), its states the head's text input.
 */
async function traceForward(c: FusionConfig, p: SizePoint, te?: OnnxTextEncoder): Promise<Trace> {
  const [B, Tt, Ta] = [p.B!, p.Tt!, p.Ta!];
  const be = OrtBackend.create({ threads: 1 });
  try {
    const model = FusionModel.create(be, { ...c, maxTextLen: Tt, maxAudioLen: Ta });
    const ones = (n: number) => new Float32Array(n).fill(1);
    let a: Awaited<ReturnType<typeof encodeBatch>>['ha'];
    const encoderShapes = new Map<string, number[]>();
    if (te) {
      const enc = TrainableTextEncoder.create(be, te.config, { weights: te.weights, maxLen: Tt });
      for (const q of enc.params) encoderShapes.set(`text.${q.name}`, q.shape);
      const audio = FUSION_SPECS[c.fusion].audio ? { audio: new Float32Array(B * Ta * c.audioDim), audioMask: ones(B * Ta) } : undefined;
      ({ ha: a } = await encodeBatch(enc, model, new Float32Array(B * Tt), ones(B * Tt), B, new Int32Array(B).fill(-1), audio));
    } else {
      const inp = {
        text: new Float32Array(B * Tt * c.textDim),
        textMask: ones(B * Tt),
        audio: new Float32Array(B * Ta * c.audioDim),
        audioMask: ones(B * Ta),
        labels: new Int32Array(B).fill(-1),
      };
      a = model.setInputs(inp, ones(c.numClasses));
    }
    await model.forward(a, false, false);
    const { graph, feeds, values } = be.trace([a.logits]);
    return { graph, bytes: graph.toBytes(), feeds, logits: values[0]!, encoderShapes };
  } finally {
    await be.destroy();
  }
}

/** The numbers of a trace that depend on the batch shape: each int64 feed's values; each float feed's offset, length and dims. */
function shapeNumbers(t: Trace): number[] {
  return t.feeds.flatMap((f) => (f.data instanceof BigInt64Array ? Array.from(f.data, Number) : [f.offset, f.data.length, ...f.dims]));
}

/**
 * The ONNX bytes of a checkpoint's model. `params` maps parameter names (as FusionModel names them: 'text.proj.w',
 * 'self.0.q.b', ...) to their values; checkpoints store them as 'param.<name>'.
 */
export async function fusionToOnnx(
  meta: CheckpointMeta,
  params: ReadonlyMap<string, NamedTensor>,
  o: FusionOnnxOptions = {},
): Promise<Uint8Array> {
  const c = meta.config;
  const norm = o.norm ?? null;
  const spec = (FUSION_SPECS as Record<string, FusionSpec>)[c.fusion];
  if (!spec)
    throw new ExportError(`fusion variant '${c.fusion}' is not known to this emofuse (known: ${Object.keys(FUSION_SPECS).join(', ')})`);
  let shapes: Map<string, number[]>;
  try {
    shapes = new Map(FusionModel.create(new CpuBackend('f32'), c).params.map((p) => [p.name, p.shape]));
  } catch (err) {
    throw new ExportError(`the checkpoint's model config: ${(err as Error).message}`);
  }
  for (const [name, shape] of shapes) {
    const t = params.get(name);
    if (!t) throw new ExportError(`no parameter '${name}' (variant ${c.fusion}); the checkpoint does not match its config`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new ExportError(`parameter '${name}' has ${t.data.length} values, [${shape.join(', ')}] expected`);
  }
  const unused = [...params.keys()].filter((n) => !shapes.has(n));
  if (unused.length) throw new ExportError(`parameters the model of variant ${c.fusion} does not have: ${unused.join(', ')}`);

  // --- the forward, traced at every batch shape of the grid and at CHECK
  const corners = gridCorners(GRID);
  const traces = new Map<SizePoint, Trace>();
  const te = o.textEncoder;
  for (const p of [...corners, CHECK]) traces.set(p, await traceForward(c, p, te));
  const first = traces.get(corners[0]!)!;
  const weights = new Map(params); // the head's parameters, and the encoder's by their labels ('text.<HF name>')
  for (const [label, shape] of first.encoderShapes) {
    const w = te!.weights.get(label.slice('text.'.length));
    if (!w) throw new ExportError(`the text encoder has no weight '${label.slice('text.'.length)}' [${shape.join(', ')}]`);
    weights.set(label, { shape, data: w });
  }
  for (const [p, t] of traces) {
    const same =
      t.bytes.length === first.bytes.length &&
      t.bytes.every((b, i) => b === first.bytes[i]) &&
      t.feeds.every((f, i) => f.label === first.feeds[i]!.label);
    if (!same)
      throw new ExportError(
        `the ${c.fusion} forward records a different graph at batch shape ${JSON.stringify(p)} than at ` +
          `${JSON.stringify(corners[0])}: an op bakes a shape into its graph`,
      );
  }
  const where: string[] = first.feeds.flatMap((f) =>
    f.data instanceof BigInt64Array
      ? Array.from(f.data, (_, i) => `${f.name}[${i}]`)
      : ['offset', 'length', ...f.dims.map((_, i) => `dim ${i}`)].map((w) => `${w} of ${f.name} (${f.label ?? 'unlabelled'})`),
  );
  let polys: SizePoly[];
  try {
    polys = fitSizes(
      SIZES,
      corners,
      (p) => shapeNumbers(traces.get(p)!),
      CHECK,
      (i) => `the traced forward's ${where[i]}`,
    );
  } catch (err) {
    throw new ExportError(`${(err as Error).message}: an op bakes a shape into its graph`);
  }

  // --- the exported graph: inputs, their sizes, the host part of setInputs, then the traced forward
  const g = new OnnxGraph(`emofuse-${c.fusion}`);
  const textRaw = te
    ? g.inputI64('input_ids', ['batch', 'text_len']) // [batch, text_len] token ids of te.tokenizer
    : g.input('text', ['batch', 'text_len', c.textDim], `text tokens of encoder ${meta.textEncoder}, at most ${c.maxTextLen}`);
  const textMask = g.input('text_mask', ['batch', 'text_len'], '1 for a real text token, 0 for padding');
  const La = c.audioLayers ?? 1;
  const audioIn = g.input(
    'audio',
    La > 1 ? ['batch', 'audio_len', La, c.audioDim / La] : ['batch', 'audio_len', c.audioDim],
    `audio tokens of encoder ${meta.audioEncoder}, at most ${c.maxAudioLen}${La > 1 ? `, ${La} layers each (0 = the embeddings)` : ''}`,
  );
  // the model reads a token's layers side by side, [La * Ca / La] (the feature cache's layout)
  const audioRaw = La > 1 ? g.op('Reshape', [audioIn, g.i64([0, 0, -1])]) : audioIn; // [batch, audio_len, Ca]
  const audioMask = g.input('audio_mask', ['batch', 'audio_len'], '1 for a real audio token, 0 for padding');
  const sizes = new SizeExprs(g, {
    B: g.op('Shape', [textMask], { start: 0, end: 1 }),
    Tt: g.op('Shape', [textMask], { start: 1, end: 2 }),
    Ta: g.op('Shape', [audioMask], { start: 1, end: 2 }),
  });
  const host = hostInputs(g, c, spec, norm, { text: textRaw, textMask, audio: audioRaw, audioMask });
  if (te) Object.assign(host, tokenInputs(g, textRaw, textMask));

  const bind: Record<string, string> = {};
  let at = 0;
  /** The fitted polynomials of the next n numbers of shapeNumbers. */
  const next = (n: number) => {
    at += n;
    return polys.slice(at - n, at);
  };
  for (const [fi, f] of first.feeds.entries()) {
    if (f.data instanceof BigInt64Array) {
      bind[f.name] = sizes.vector(next(f.data.length));
      continue;
    }
    const [off, len, ...dims] = next(2 + f.dims.length);
    const shape = sizes.vector(dims);
    const label = f.label ?? '';
    const region = (v: string) =>
      g.op('Reshape', [
        g.op('Slice', [g.op('Reshape', [v, g.i64([-1])]), sizes.vector([off!]), sizes.vector([addPolys(off!, len!)]), g.i64([0])]),
        shape,
      ]);
    const p = weights.get(label);
    if (p) {
      const w = g.weight(label, p.shape, p.data);
      const whole = SizeExprs.constant(off!) === 0 && SizeExprs.constant(len!) === p.data.length;
      bind[f.name] = whole ? g.op('Reshape', [w, shape]) : region(w); // the audio positions: their first audio_len rows
    } else if (label === 'ones' || label === 'ones2') {
      bind[f.name] = g.op('Expand', [g.f(1), shape]); // [B, 1] / [B, 2] of ones
    } else if (host[label] && SizeExprs.constant(off!) === 0) {
      bind[f.name] = g.op('Reshape', [host[label]!(), shape]);
    } else if (!f.label && f.data.length === 1 && [...traces.values()].every((t) => t.feeds[fi]!.data[0] === f.data[0])) {
      bind[f.name] = g.f([f.data[0]!], [1]); // a scalar an op takes from the host, the same at every shape (add's alpha)
    } else {
      throw new ExportError(
        `the traced ${c.fusion} forward reads '${label || f.name}' [${f.dims.join(', ')}], which the exporter does not know how ` +
          `to feed (update export/fusion-onnx.ts)`,
      );
    }
  }
  first.graph.output('logits', first.logits, ['B', c.numClasses]);
  const logits = g.embed(first.graph, bind).logits!;
  g.output('logits', logits, ['batch', c.numClasses], 'class scores, in the order of metadata class_names');
  g.output('probabilities', g.op('Softmax', [logits], { axis: -1 }), ['batch', c.numClasses], 'softmax of the logits');
  g.prune(); // what only the backward reads (attention's lse, layer norm's mean and rstd)
  return g.toBytes({
    producerVersion: o.producerVersion ?? 'dev',
    doc:
      `emofuse fusion model '${c.fusion}': ${meta.classNames.length} classes; text ${meta.textEncoder} (${c.textDim}), audio ` +
      `${meta.audioEncoder} (${c.audioDim})`,
    metadata: onnxMetadata(meta, norm, te?.tokenizer),
  });
}

/**
 * What TrainableTextEncoder.setInputs writes from the host, by label, from the graph's input_ids [B, T] int64 and
 * text_mask [B, T]: the ids and their positions 0..T-1 (float, as the encoder's gathers read them), token type 0.
 */
function tokenInputs(g: OnnxGraph, inputIds: string, textMask: string): Record<string, () => string> {
  const ids = g.op('Cast', [inputIds], { to: 1 }); // [B, T] float
  const T = g.op('Cast', [g.op('Shape', [inputIds], { start: 1, end: 2 })], { to: 1 }); // [1]
  const t = g.op('Range', [g.f(0), g.op('Squeeze', [T, g.i64([0])]), g.f(1)]); // [T] 0..T-1
  return {
    'in.textIds': () => ids,
    'in.textPos': () => g.op('Add', [g.op('Mul', [ids, g.f(0)]), t]), // [B, T]: t in every row
    'in.textType': () => g.op('Mul', [ids, g.f(0)]), // [B, T] zeros
    'in.textIdsMask': () => textMask,
  };
}

/**
 * What FusionModel.setInputs writes from the host, as graph values by the label of the tensor it writes (built on
 * first use): standardized tokens, the masks, and the pooled [mean, std] statistics (fusion/input-norm.ts).
 */
function hostInputs(
  g: OnnxGraph,
  c: FusionConfig,
  spec: FusionSpec,
  norm: InputNorm | null,
  x: { text: string; textMask: string; audio: string; audioMask: string },
): Record<string, () => string> {
  const once = (f: () => string) => {
    let v: string | undefined;
    return () => (v ??= f());
  };
  const normVector = (name: string, st: NormStats, dim: number) => {
    if (st.mean.length !== dim || st.std.length !== dim)
      throw new ExportError(`input standardization '${name}' has ${st.mean.length} means and ${st.std.length} stds for ${dim} dimensions`);
    return { mean: g.weight(`norm.${name}.mean`, [dim], st.mean), std: g.weight(`norm.${name}.std`, [dim], st.std) };
  };
  /** Kept tokens standardized, padding 0: ((x - mean) / std) * mask. */
  const standardize = (v: string, mask: string, name: 'text' | 'audio', dim: number): string => {
    const st = norm?.[name];
    if (!st) return v;
    const n = normVector(name, st, dim);
    return g.op('Mul', [g.op('Div', [g.op('Sub', [v, n.mean]), n.std]), g.op('Unsqueeze', [mask, g.i64([2])])]); // [B, T, dim]
  };
  const text = once(() => standardize(x.text, x.textMask, 'text', c.textDim));
  const audio = once(() => standardize(x.audio, x.audioMask, 'audio', c.audioDim));
  /** [mean, population std] over kept tokens (zeros for a row without any): [B, T, C] -> [B, 2C]. */
  const meanStd = (v: string, mask: string): string => {
    const m3 = g.op('Unsqueeze', [mask, g.i64([2])]); // [B, T, 1]
    const n = g.op('Max', [g.op('ReduceSum', [mask, g.i64([1])], { keepdims: 1 }), g.f(1)]); // [B, 1]
    const mean = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [v, m3]), g.i64([1])], { keepdims: 0 }), n]); // [B, C]
    // kept x - mean [B, T, C] (two passes: no cancellation)
    const d = g.op('Mul', [g.op('Sub', [v, g.op('Unsqueeze', [mean, g.i64([1])])]), m3]);
    const std = g.op('Sqrt', [g.op('Div', [g.op('ReduceSum', [g.op('Mul', [d, d]), g.i64([1])], { keepdims: 0 }), n])]); // [B, C]
    return g.op('Concat', [mean, std], { axis: 1 }); // [B, 2C]
  };
  /** The linear head's features (both modalities) or the skip's (the ones the variant reads), standardized by norm.pooled. */
  const pooled = once(() => {
    const both = spec.head === 'linear';
    const parts = [
      ...(both || spec.text ? [meanStd(text(), x.textMask)] : []),
      ...(both || spec.audio ? [meanStd(audio(), x.audioMask)] : []),
    ];
    const P = (both || spec.text ? 2 * c.textDim : 0) + (both || spec.audio ? 2 * c.audioDim : 0);
    const v = parts.length > 1 ? g.op('Concat', parts, { axis: 1 }) : parts[0]!; // [B, P]
    if (!norm?.pooled) return v;
    const n = normVector('pooled', norm.pooled, P);
    // a row without tokens of a modality reads zeros in that modality's part (an absent modality), as in input-norm.ts
    const present = (mask: string, width: number) =>
      g.op('Mul', [
        g.op('Min', [g.op('ReduceSum', [mask, g.i64([1])], { keepdims: 1 }), g.f(1)]),
        g.f(new Array(width).fill(1), [1, width]),
      ]); // [B, width] 1 / 0
    const keep = [
      ...(both || spec.text ? [present(x.textMask, 2 * c.textDim)] : []),
      ...(both || spec.audio ? [present(x.audioMask, 2 * c.audioDim)] : []),
    ];
    const std = g.op('Div', [g.op('Sub', [v, n.mean]), n.std]); // [B, P]
    return g.op('Mul', [std, keep.length > 1 ? g.op('Concat', keep, { axis: 1 }) : keep[0]!]); // [B, P]
  });
  return {
    'in.text': text,
    'in.audio': audio,
    'in.textMask': () => x.textMask,
    'in.audioMask': () => x.audioMask,
    'in.catMask': once(() => g.op('Concat', [x.textMask, x.audioMask], { axis: 1 })),
    pooled,
    stats: pooled,
  };
}

/** The metadata_props an exported model carries. */
export function onnxMetadata(meta: CheckpointMeta, norm: InputNorm | null = null, tokenizer?: string): Record<string, string> {
  const c: FusionConfig = meta.config;
  return {
    text_input: tokenizer ? 'token_ids' : 'features',
    ...(tokenizer ? { tokenizer } : {}),
    standardized_inputs: Object.keys(norm ?? {}).join(','),
    class_names: JSON.stringify(meta.classNames),
    text_encoder: meta.textEncoder,
    audio_encoder: meta.audioEncoder,
    fusion: c.fusion,
    max_text_len: String(c.maxTextLen),
    max_audio_len: String(c.maxAudioLen),
    emofuse: JSON.stringify({
      format: 1,
      config: c,
      classNames: meta.classNames,
      textEncoder: meta.textEncoder,
      audioEncoder: meta.audioEncoder,
      step: meta.step,
      ...(tokenizer ? { textInput: 'token_ids', tokenizer } : {}),
    }),
  };
}

/** Parameters of a checkpoint's tensors: 'param.<name>' -> '<name>' (moments dropped). */
export function checkpointParams(tensors: ReadonlyMap<string, NamedTensor>): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) if (name.startsWith('param.')) out.set(name.slice('param.'.length), t);
  return out;
}
