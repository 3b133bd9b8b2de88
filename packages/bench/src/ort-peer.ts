// onnxruntime-node as a peer: a one-node ONNX graph built in code (onnx-proto), run on ORT's CPU execution
// provider or its WebGPU execution provider (ORT's own statically linked Dawn, which on Linux picks the
// Vulkan adapter: Mesa lavapipe here). Each timed run is `session.run(feeds)`, which resolves once the outputs
// are back on the host, so it includes copying inputs in and the output out (our kernels are also timed
// with those copies in the "+ transfers" variant).

import { createRequire } from 'node:module';
import type * as OrtTypes from 'onnxruntime-node';
import type { Runner, Skip, Variant } from './harness.ts';

const require = createRequire(import.meta.url);

export type OrtEp = 'cpu' | 'webgpu';

let ortModule: typeof OrtTypes | null | undefined;
let ortError = '';

/** onnxruntime-node, or null (with the reason in ortLoadError()) when it cannot be loaded. */
export function loadOrt(): typeof OrtTypes | null {
  if (ortModule === undefined) {
    try {
      ortModule = require('onnxruntime-node') as typeof OrtTypes;
    } catch (err) {
      ortModule = null;
      ortError = `onnxruntime-node could not be loaded: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  return ortModule;
}

export function ortLoadError(): string {
  return ortError;
}

export function ortVersion(): string {
  try {
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export interface OnnxNode {
  opType: string;
  domain?: string;
  attributes?: Record<string, number | number[]>;
  /** Input and output names; default: the graph's inputs and its output (a one-node graph). */
  inputs?: string[];
  outputs?: string[];
}

/** A constant tensor in the graph: int64 (shapes for Reshape) or float. */
export interface OnnxInitializer {
  name: string;
  dims: number[];
  int64?: number[];
  float?: number[];
}

/**
 * A model from nodes in order; graph inputs and the output are float32 with static shapes. One node
 * without explicit names reads every graph input and writes the output.
 */
export function onnxModel(
  nodes: OnnxNode[],
  inputs: Record<string, number[]>,
  output: [string, number[]],
  initializers: OnnxInitializer[] = [],
): Uint8Array {
  const { onnx } = require('onnx-proto') as typeof import('onnx-proto');
  const F = onnx.TensorProto.DataType.FLOAT;
  const valueInfo = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const attribute = (node: OnnxNode) =>
    Object.entries(node.attributes ?? {}).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
        : Number.isInteger(v)
          ? { name, type: onnx.AttributeProto.AttributeType.INT, i: v }
          : { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v },
    );
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'emofuse-bench',
    opsetImport: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: `${nodes.map((n) => n.opType).join('-')}-bench`,
      node: nodes.map((n, i) => ({
        name: `n${i}`,
        opType: n.opType,
        domain: n.domain ?? '',
        input: n.inputs ?? Object.keys(inputs),
        output: n.outputs ?? [output[0]],
        attribute: attribute(n),
      })),
      initializer: initializers.map((t) =>
        t.int64
          ? { name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: t.int64 }
          : { name: t.name, dims: t.dims, dataType: F, floatData: t.float ?? [] },
      ),
      input: Object.entries(inputs).map(([n, d]) => valueInfo(n, d)),
      output: [valueInfo(output[0], output[1])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A model with one node reading every input and writing the output. */
export function oneNodeModel(node: OnnxNode, inputs: Record<string, number[]>, output: [string, number[]]): Uint8Array {
  return onnxModel([node], inputs, output);
}

export interface OrtVariantSpec {
  name: string;
  ep: OrtEp;
  /** One node, or a graph's nodes in order (with explicit input/output names) and its constants. */
  node: OnnxNode | { nodes: OnnxNode[]; initializers?: OnnxInitializer[] };
  /** Input name -> shape, in the op's input order. */
  inputs: Record<string, number[]>;
  output: [string, number[]];
  /** Input set s: one Float32Array per input, in `inputs` order. */
  data(set: number): Float32Array[];
  sets: number;
  note?: string;
}

export function ortVariant(spec: OrtVariantSpec): Variant {
  return {
    name: spec.name,
    kind: 'peer',
    device: spec.ep === 'cpu' ? 'ORT CPU EP' : 'ORT WebGPU EP',
    note: spec.note,
    async prepare(): Promise<Runner | Skip> {
      const ort = loadOrt();
      if (!ort) return { skip: ortLoadError() };
      if (!ort.listSupportedBackends().some((b) => b.name === spec.ep))
        return { skip: `this onnxruntime-node build has no '${spec.ep}' execution provider` };
      const model =
        'nodes' in spec.node
          ? onnxModel(spec.node.nodes, spec.inputs, spec.output, spec.node.initializers)
          : oneNodeModel(spec.node, spec.inputs, spec.output);
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [spec.ep],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      });
      const names = Object.keys(spec.inputs);
      const feeds = Array.from({ length: spec.sets }, (_, s) => {
        const d = spec.data(s);
        return Object.fromEntries(names.map((n, i) => [n, new ort.Tensor('float32', d[i]!, spec.inputs[n]!)]));
      });
      let last: Float32Array | null = null;
      return {
        async run(set) {
          const r = await session.run(feeds[set % feeds.length]!);
          last = r[spec.output[0]]!.data as Float32Array;
        },
        outputs: () => [last!],
        dispose: () => session.release(),
      };
    },
  };
}
