// The trained fusion model as an ONNX graph: the inference forward of fusion/model.ts (no dropout), built from a
// checkpoint's public structure only (its config, the variant's FUSION_SPECS entry, and the named parameters), so
// any runtime with ONNX opset 17 (onnxruntime CPU / web / mobile) classifies from the same features.
//
//   inputs:  text [batch, text_len, Ct], text_mask [batch, text_len], audio [batch, audio_len, Ca],
//            audio_mask [batch, audio_len]   (masks: 1 keep, 0 padding; lengths up to the model's Tt / Ta)
//   outputs: logits [batch, K_cls], probabilities [batch, K_cls] (softmax of the logits)
//
// Every op is one the WGSL kernels also compute: linear = MatMul + Add, post-LN blocks with LayerNormalization
// (eps 1e-5), tanh-GELU spelled out (as shaders/gelu.fwd.wgsl), masked multi-head attention (padded keys get
// -1e9 before the softmax; a row with no kept key gives 0, as the kernel does) and masked mean pooling
// (sum / max(count, 1)). Batch and both lengths are dynamic; the audio positions are sliced to audio_len.
// Input standardization (fusion/input-norm.ts), when the checkpoint has it, is the graph's first ops: kept tokens
// become (x - mean) / std, padding stays 0; the `linear` head's pooled vector [mean_t, std_t, mean_a, std_a] over
// kept tokens is standardized by its own statistics. Dropout (before the classifier and inside blocks) is the
// identity at inference and is not in the graph.
// Metadata (`metadata_props`): class names, encoder ids, the fusion config, and `emofuse` (all of it as JSON).

import type { InputNorm, NormStats } from '../fusion/input-norm.ts';
import { FUSION_SPECS, type FusionConfig, type FusionSpec } from '../fusion/model.ts';
import type { CheckpointMeta } from '../train/checkpoint.ts';
import { OnnxGraph } from './onnx-graph.ts';

/** A checkpoint that cannot be exported (the message names the tensor or setting). */
export class ExportError extends Error {
  override name = 'ExportError';
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export const ONNX_INPUTS = ['text', 'text_mask', 'audio', 'audio_mask'] as const;
export const ONNX_OUTPUTS = ['logits', 'probabilities'] as const;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const MASKED_SCORE = -1e9;
const LN_EPS = 1e-5;

export interface FusionOnnxOptions {
  /** The checkpoint's input standardization (`norm.*` tensors), or null when it reads its inputs as they are. */
  norm?: InputNorm | null;
  producerVersion?: string;
}

/**
 * The ONNX bytes of a checkpoint's model. `params` maps parameter names (as FusionModel names them: 'text.proj.w',
 * 'self.0.q.b', ...) to their values; checkpoints store them as 'param.<name>'.
 */
export function fusionToOnnx(meta: CheckpointMeta, params: ReadonlyMap<string, NamedTensor>, o: FusionOnnxOptions = {}): Uint8Array {
  const c = meta.config;
  const norm = o.norm ?? null;
  const spec = (FUSION_SPECS as Record<string, FusionSpec>)[c.fusion];
  if (!spec) throw new ExportError(`fusion variant '${c.fusion}' is not known to this emofuse (known: ${Object.keys(FUSION_SPECS).join(', ')})`);
  if (!['pool', 'concat', 'mean', 'gate', 'linear'].includes(spec.head)) throw new ExportError(`the exporter does not know the '${spec.head}' head of variant '${c.fusion}' yet`);
  const C = c.width;
  const H = c.heads;
  const D = C / H;
  const g = new OnnxGraph(`emofuse-${c.fusion}`);

  const used = new Set<string>();
  const weight = (name: string, shape: number[]): string => {
    const t = params.get(name);
    if (!t) throw new ExportError(`no parameter '${name}' (variant ${c.fusion}); the checkpoint does not match its config`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new ExportError(`parameter '${name}' has ${t.data.length} values, [${shape.join(', ')}] expected`);
    used.add(name);
    return g.float(name, shape, t.data);
  };
  const i64 = (name: string, v: number[]) => g.int64(name, v);
  const f32 = (name: string, v: number) => g.float(name, [], [v]);

  // --- inputs
  const textRaw = g.input('text', ['batch', 'text_len', c.textDim], `text tokens of encoder ${meta.textEncoder}, at most ${c.maxTextLen}`);
  const textMask = g.input('text_mask', ['batch', 'text_len'], '1 for a real text token, 0 for padding');
  const audioRaw = g.input('audio', ['batch', 'audio_len', c.audioDim], `audio tokens of encoder ${meta.audioEncoder}, at most ${c.maxAudioLen}`);
  const audioMask = g.input('audio_mask', ['batch', 'audio_len'], '1 for a real audio token, 0 for padding');

  // --- shared constants
  const one = f32('one', 1);
  const half = f32('half', 0.5);
  const axis1 = i64('axis_1', [1]);
  const axes12 = i64('axes_1_2', [1, 2]);
  const axis2 = i64('axis_2', [2]);
  const headShape = i64('head_shape', [0, 0, H, D]); // [B, T, C] -> [B, T, H, D]
  const mergedShape = i64('merged_shape', [0, 0, C]); // [B, T, H, D] -> [B, T, C]
  const normVector = (name: string, st: NormStats, dim: number) => {
    if (st.mean.length !== dim || st.std.length !== dim) throw new ExportError(`input standardization '${name}' has ${st.mean.length} means and ${st.std.length} stds for ${dim} dimensions`);
    return { mean: g.float(`norm.${name}.mean`, [dim], st.mean), std: g.float(`norm.${name}.std`, [dim], st.std) };
  };
  /** Kept tokens standardized, padding 0: ((x - mean) / std) * mask. */
  const standardize = (x: string, mask: string, name: 'text' | 'audio', dim: number): string => {
    const st = norm?.[name];
    if (!st) return x;
    const v = normVector(name, st, dim);
    return g.op('Mul', [g.op('Div', [g.op('Sub', [x, v.mean]), v.std]), g.op('Unsqueeze', [mask, axis2])], {}, `${name}_standardized`); // [B, T, dim]
  };
  const text = standardize(textRaw, textMask, 'text', c.textDim);
  const audio = standardize(audioRaw, audioMask, 'audio', c.audioDim);

  const linear = (x: string, name: string, inDim: number, outDim: number): string =>
    g.op('Add', [g.op('MatMul', [x, weight(`${name}.w`, [inDim, outDim])]), weight(`${name}.b`, [outDim])], {}, g.fresh(name)); // [.., outDim]

  const gelu = (x: string): string => {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, f32('gelu_c', 0.044715)])]), f32('gelu_s', SQRT_2_OVER_PI)]);
    return g.op('Mul', [g.op('Mul', [x, half]), g.op('Add', [one, g.op('Tanh', [inner])])]);
  };

  const layerNorm = (x: string, name: string): string =>
    g.op('LayerNormalization', [x, weight(`${name}.g`, [C]), weight(`${name}.b`, [C])], { axis: -1, epsilon: { float: LN_EPS } }, g.fresh(name));

  /** Key mask [B, Tk] -> additive bias [B, 1, 1, Tk] and "has any key" [B, 1, 1, 1] (0 for a fully masked row). */
  const keyMask = (mask: string) => {
    const bias = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [one, mask]), f32('masked_score', MASKED_SCORE)]), axes12]);
    const count = g.op('ReduceSum', [mask, axis1], { keepdims: 1 }); // [B, 1]
    const any = g.op('Unsqueeze', [g.op('Cast', [g.op('Greater', [count, f32('zero', 0)])], { to: 1 }), axes12]); // [B, 1, 1, 1]
    return { bias, any };
  };

  /** Post-LN block: h1 = LN1(xq + MHA(xq, xkv)), y = LN2(h1 + W2 gelu(W1 h1)). */
  const block = (name: string, xq: string, xkv: string, km: { bias: string; any: string }): string => {
    const q = linear(xq, `${name}.q`, C, C); // [B, Tq, C]
    const k = linear(xkv, `${name}.k`, C, C); // [B, Tk, C]
    const v = linear(xkv, `${name}.v`, C, C); // [B, Tk, C]
    const qh = g.op('Transpose', [g.op('Reshape', [q, headShape])], { perm: [0, 2, 1, 3] }); // [B, H, Tq, D]
    const kh = g.op('Transpose', [g.op('Reshape', [k, headShape])], { perm: [0, 2, 3, 1] }); // [B, H, D, Tk]
    const vh = g.op('Transpose', [g.op('Reshape', [v, headShape])], { perm: [0, 2, 1, 3] }); // [B, H, Tk, D]
    const s = g.op('Add', [g.op('Mul', [g.op('MatMul', [qh, kh]), f32(`${name}.scale`, 1 / Math.sqrt(D))]), km.bias]); // [B, H, Tq, Tk]
    const p = g.op('Mul', [g.op('Softmax', [s], { axis: -1 }), km.any]); // [B, H, Tq, Tk]
    const att = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [p, vh])], { perm: [0, 2, 1, 3] }), mergedShape]); // [B, Tq, C]
    const o = linear(att, `${name}.o`, C, C); // [B, Tq, C]
    const h1 = layerNorm(g.op('Add', [xq, o]), `${name}.ln1`); // [B, Tq, C]
    const f = gelu(linear(h1, `${name}.ff1`, C, c.ffnMult * C)); // [B, Tq, F]
    const f2 = linear(f, `${name}.ff2`, c.ffnMult * C, C); // [B, Tq, C]
    return layerNorm(g.op('Add', [h1, f2]), `${name}.ln2`); // [B, Tq, C]
  };

  /** sum_t mask x / max(sum_t mask, 1): [B, T, C] -> [B, C]. */
  const meanPool = (x: string, mask: string): string => {
    const num = g.op('ReduceSum', [g.op('Mul', [x, g.op('Unsqueeze', [mask, axis2])]), axis1], { keepdims: 0 }); // [B, C]
    const den = g.op('Max', [g.op('ReduceSum', [mask, axis1], { keepdims: 1 }), one]); // [B, 1]
    return g.op('Div', [num, den]);
  };

  /** [mean, population std] over kept tokens (zeros for a row without any): [B, T, C] -> [B, 2C]. */
  const meanStdPool = (x: string, mask: string): string => {
    const m3 = g.op('Unsqueeze', [mask, axis2]); // [B, T, 1]
    const n = g.op('Max', [g.op('ReduceSum', [mask, axis1], { keepdims: 1 }), one]); // [B, 1]
    const mean = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [x, m3]), axis1], { keepdims: 0 }), n]); // [B, C]
    const d = g.op('Sub', [x, g.op('Unsqueeze', [mean, axis1])]); // x - mean [B, T, C] (two passes: no cancellation)
    const std = g.op('Sqrt', [g.op('Div', [g.op('ReduceSum', [g.op('Mul', [g.op('Mul', [d, d]), m3]), axis1], { keepdims: 0 }), n])]); // [B, C]
    return g.op('Concat', [mean, std], { axis: 1 }); // [B, 2C]
  };

  // --- stem
  let t0: string | undefined;
  let a0: string | undefined;
  const stems = spec.head !== 'linear';
  if (spec.text && stems) t0 = linear(text, 'text.proj', c.textDim, C); // [B, Tt, C]
  if (spec.audio && stems) {
    const pos = weight('audio.pos', [c.maxAudioLen, C]); // [Ta_max, C]
    const audioLen = g.op('Shape', [audio], { start: 1, end: 2 }); // [1]
    const posUsed = g.op('Slice', [pos, i64('zero_i', [0]), audioLen, i64('axis_0', [0])]); // [Ta, C]
    a0 = g.op('Add', [linear(audio, 'audio.proj', c.audioDim, C), posUsed], {}, 'a0'); // [B, Ta, C]
  }
  // --- cross
  let t1 = t0;
  let a1 = a0;
  if (spec.cross) {
    t1 = block('cross.text_from_audio', t0!, a0!, keyMask(audioMask)); // [B, Tt, C]
    a1 = block('cross.audio_from_text', a0!, t0!, keyMask(textMask)); // [B, Ta, C]
  }
  // --- head
  let pooled: string; // [B, C] (or [B, P] for the linear head)
  let pooledWidth = C;
  if (spec.head === 'linear') {
    // mean + std of each modality's (standardized) input tokens, standardized again: P = 2 Ct + 2 Ca
    pooledWidth = 2 * c.textDim + 2 * c.audioDim;
    pooled = g.op('Concat', [meanStdPool(text, textMask), meanStdPool(audio, audioMask)], { axis: 1 }); // [B, P]
    if (norm?.pooled) {
      const v = normVector('pooled', norm.pooled, pooledWidth);
      pooled = g.op('Div', [g.op('Sub', [pooled, v.mean]), v.std]); // [B, P]
    }
  } else if (spec.head === 'pool') {
    let x: string; // [B, T, C]
    let mask: string; // [B, T]
    if (spec.text && spec.audio) {
      x = g.op('Concat', [t1!, a1!], { axis: 1 });
      mask = g.op('Concat', [textMask, audioMask], { axis: 1 });
    } else if (spec.text) [x, mask] = [t1!, textMask];
    else [x, mask] = [a1!, audioMask];
    if (spec.self) {
      const km = keyMask(mask);
      for (let l = 0; l < c.layers; l++) x = block(`self.${l}`, x, x, km);
    }
    pooled = meanPool(x, mask);
  } else {
    const pt = meanPool(t0!, textMask); // [B, C]
    const pa = meanPool(a0!, audioMask); // [B, C]
    const zcat = g.op('Concat', [pt, pa], { axis: 1 }); // [B, 2C]
    let u: string;
    if (spec.head === 'concat') u = zcat;
    else if (spec.head === 'mean') u = g.op('Mul', [g.op('Add', [pt, pa]), half]);
    else {
      const gs = g.op('Sigmoid', [linear(zcat, 'gate', 2 * C, C)]); // [B, C]
      u = g.op('Add', [g.op('Mul', [gs, pt]), g.op('Mul', [g.op('Sub', [one, gs]), pa])]); // g pt + (1 - g) pa
    }
    pooled = gelu(linear(u, 'head', spec.head === 'concat' ? 2 * C : C, C));
  }
  // --- classifier (dropout is the identity at inference), and the linear skip: logits += stats [B, S] @ W_skip
  let logits = g.op('Add', [g.op('MatMul', [pooled, weight('classifier.w', [pooledWidth, c.numClasses])]), weight('classifier.b', [c.numClasses])]);
  if ((c.linearSkip ?? false) && spec.head !== 'linear') {
    const parts = [...(spec.text ? [meanStdPool(text, textMask)] : []), ...(spec.audio ? [meanStdPool(audio, audioMask)] : [])];
    const S = (spec.text ? 2 * c.textDim : 0) + (spec.audio ? 2 * c.audioDim : 0);
    let stats = parts.length > 1 ? g.op('Concat', parts, { axis: 1 }) : parts[0]!; // [B, S]
    if (norm?.pooled) {
      const v = normVector('pooled', norm.pooled, S);
      stats = g.op('Div', [g.op('Sub', [stats, v.mean]), v.std]); // [B, S]
    }
    logits = g.op('Add', [logits, g.op('MatMul', [stats, weight('skip.w', [S, c.numClasses])])]);
  }
  logits = g.op('Identity', [logits], {}, 'logits');
  g.op('Softmax', [logits], { axis: -1 }, 'probabilities');
  g.output('logits', ['batch', c.numClasses], `class scores, in the order of metadata class_names`);
  g.output('probabilities', ['batch', c.numClasses], 'softmax of the logits');

  const unused = [...params.keys()].filter((n) => !used.has(n));
  if (unused.length) throw new ExportError(`parameters the exporter did not place: ${unused.join(', ')} (a model part this exporter does not know; update export/fusion-onnx.ts)`);

  return g.encode({
    producer: 'emofuse',
    producerVersion: o.producerVersion ?? 'dev',
    doc: `emofuse fusion model '${c.fusion}': ${meta.classNames.length} classes; text ${meta.textEncoder} (${c.textDim}), audio ${meta.audioEncoder} (${c.audioDim})`,
    metadata: onnxMetadata(meta, norm),
  });
}

/** The metadata_props an exported model carries. */
export function onnxMetadata(meta: CheckpointMeta, norm: InputNorm | null = null): Record<string, string> {
  const c: FusionConfig = meta.config;
  return {
    standardized_inputs: Object.keys(norm ?? {}).join(','),
    class_names: JSON.stringify(meta.classNames),
    text_encoder: meta.textEncoder,
    audio_encoder: meta.audioEncoder,
    fusion: c.fusion,
    max_text_len: String(c.maxTextLen),
    max_audio_len: String(c.maxAudioLen),
    emofuse: JSON.stringify({ format: 1, config: c, classNames: meta.classNames, textEncoder: meta.textEncoder, audioEncoder: meta.audioEncoder, step: meta.step }),
  };
}

/** Parameters of a checkpoint's tensors: 'param.<name>' -> '<name>' (moments dropped). */
export function checkpointParams(tensors: ReadonlyMap<string, NamedTensor>): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) if (name.startsWith('param.')) out.set(name.slice('param.'.length), t);
  return out;
}
