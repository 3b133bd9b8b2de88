// The pretrained weights of a converted BERT (transformers.js layout: config.json + onnx/model.onnx, what
// scripts/convert_minilm.py writes and `extract --text-encoder bert:<model>` runs) for ./text-encoder.ts, read from
// the ONNX file's initializers: the one file extract uses, so the trainable encoder starts from exactly its weights.
// Named initializers carry their HF names under the export's prefix ('m.embeddings.word_embeddings.weight',
// 'm.encoder.layer.0.attention.self.query.bias', ...); torch.onnx stores each linear's weight, transposed to [in, out],
// as an anonymous 'onnx::MatMul_<n>', so tensors are also named by the node that reads them
// ('/m/encoder/layer.0/attention/self/query/MatMul' -> 'encoder.layer.0.attention.self.query.weight'). Node-only.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TextEncoderConfig } from './text-encoder.ts';

/** A converted model that cannot be read as a BERT encoder (the message names the file and what is missing). */
export class TextEncoderWeightsError extends Error {
  override name = 'TextEncoderWeightsError';
}

const HF_NAME = /(embeddings\.[\w.]+|encoder\.layer\.\d+\.[\w.]+)$/;
const NODE = /((?:embeddings|encoder\/layer\.\d+)\/[\w/]+)\/(MatMul|Add|LayerNormalization)$/;

/** config.json + onnx/model.onnx of `folder` -> the encoder's shape and its weights by HF name ([in, out] linears). */
export function readBertWeights(folder: string): { config: TextEncoderConfig; weights: Map<string, Float32Array> } {
  const cfgFile = join(folder, 'config.json');
  const onnxFile = join(folder, 'onnx', 'model.onnx');
  for (const f of [cfgFile, onnxFile])
    if (!existsSync(f)) throw new TextEncoderWeightsError(`${f} is missing: convert the model first (python3 scripts/convert_minilm.py)`);
  const j = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  const num = (k: string, fallback?: number): number => {
    const v = j[k] ?? fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new TextEncoderWeightsError(`${cfgFile}: '${k}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (j.hidden_act !== undefined && j.hidden_act !== 'gelu')
    throw new TextEncoderWeightsError(`${cfgFile}: hidden_act '${j.hidden_act}' is not supported (gelu only)`);
  const config: TextEncoderConfig = {
    vocab: num('vocab_size'),
    maxPositions: num('max_position_embeddings'),
    typeVocab: num('type_vocab_size', 2),
    width: num('hidden_size'),
    heads: num('num_attention_heads'),
    layers: num('num_hidden_layers'),
    ffn: num('intermediate_size'),
    layerNormEps: num('layer_norm_eps', 1e-12),
    gelu: 'erf', // hidden_act 'gelu' is the exact form in BERT (transformers' ACT2FN['gelu'])
  };
  const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');
  const g = onnx.ModelProto.decode(readFileSync(onnxFile)).graph;
  const inits = new Map<string, Float32Array>();
  for (const t of g?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const raw = t.rawData;
    const data = raw?.length
      ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length))
      : Float32Array.from(t.floatData ?? []);
    inits.set(t.name!, data);
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, data] of inits) {
    const m = HF_NAME.exec(name);
    if (m) weights.set(m[1]!, data);
  }
  // Tensors named by the node that reads them (through Identity nodes: an export may share equal tensors, as the
  // random test fixture's zero biases): MatMul -> .weight, Add of a tensor -> .bias, LayerNormalization -> .weight/.bias.
  const alias = new Map<string, string>();
  for (const n of g?.node ?? []) if (n.opType === 'Identity' && inits.has(n.input![0]!)) alias.set(n.output![0]!, n.input![0]!);
  const tensor = (name: string | undefined) => (name === undefined ? undefined : inits.get(alias.get(name) ?? name));
  for (const n of g?.node ?? []) {
    const m = NODE.exec(n.name ?? '');
    if (!m) continue;
    const at = m[1]!.replaceAll('/', '.');
    const ins = n.input ?? [];
    if (m[2] === 'MatMul') {
      const w = ins.map(tensor).find((t) => t);
      if (w) weights.set(`${at}.weight`, w);
    } else if (m[2] === 'Add') {
      const b = ins.map(tensor).find((t) => t);
      if (b) weights.set(`${at}.bias`, b);
    } else {
      const [w, b] = [tensor(ins[1]), tensor(ins[2])];
      if (w) weights.set(`${at}.weight`, w);
      if (b) weights.set(`${at}.bias`, b);
    }
  }
  return { config, weights };
}
