// ONNX graphs built in code: a tiny builder over onnx-proto, so a backend op (or a benchmark's one-node model)
// reads as the few lines of ONNX it is. Float32 tensors at the graph boundary (int64 inputs for shapes and sizes);
// dims are numbers (static) or names (symbolic, e.g. 'M'), so one session serves every shape of an op. `embed`
// copies one graph into another (the ort backend records a whole training step as one graph of its ops' graphs,
// and the ONNX export records the model's inference forward the same way: ../export/fusion-onnx.ts). The one ONNX
// builder of emofuse: op graphs, step graphs and exported models (named weights, docs and metadata) all use it.
//
//   const g = new OnnxGraph('axpy');
//   const y = g.input('y', ['n']), x = g.input('x', ['n']), alpha = g.input('alpha', [1]);
//   g.output('out', g.op('Add', [y, g.op('Mul', [x, alpha])]), ['n']);
//   const bytes = g.toBytes();

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export type Dim = number | string;
export type AttrValue = number | number[] | string;

interface Node {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttrValue>;
}

interface Initializer {
  name: string;
  dims: number[];
  int64?: number[];
  float?: number[];
  /** Float32 data written as raw bytes (weights). */
  raw?: Float32Array;
}

/**
 * A graph input or output: name, dims (null: no shape at all, not even a rank), element type and an optional doc
 * string.
 */
type ValueInfo = [string, Dim[] | null, 'float32' | 'int64', string?];

/** What an exported model carries besides its graph. */
export interface ModelInfo {
  producerVersion?: string;
  doc?: string;
  /** metadata_props entries. */
  metadata?: Record<string, string>;
}

/** Opset of the default domain: 20 for Gelu's tanh form. */
export const OPSET = 20;

export class OnnxGraph {
  private nodes: Node[] = [];
  private inputs: ValueInfo[] = [];
  private outputs: ValueInfo[] = [];
  private inits: Initializer[] = [];
  private counter = 0;
  /** The node writing each value. */
  private producer = new Map<string, Node>();
  /** Values made graph outputs under another name: node inputs read them by that name (applied in toBytes and embed). */
  private renamed = new Map<string, string>();

  constructor(readonly name: string) {}

  /**
   * A float32 graph input. `dims` null declares no shape: onnxruntime then infers no shapes downstream of it, which
   * is what keeps a big step graph's session creation fast (symbolic dims on its thousands of inputs made loading
   * superlinear in the graph's size: the recorder's inputs have none, see ./recorder.ts).
   */
  input(name: string, dims: Dim[] | null, doc?: string): string {
    this.inputs.push([name, dims, 'float32', doc]);
    return name;
  }

  /** An int64 graph input (a shape, slice bounds or sizes fed at run time, so the graph itself stays shape-free). */
  inputI64(name: string, dims: Dim[] | null): string {
    this.inputs.push([name, dims, 'int64']);
    return name;
  }

  /**
   * Copies `g`'s nodes and constants into this graph under fresh names, its inputs bound to this graph's values
   * `bind` (input name -> value); returns g's outputs as values of this graph (output name -> value).
   */
  embed(g: OnnxGraph, bind: Record<string, string>): Record<string, string> {
    const names = new Map<string, string>();
    for (const [name] of g.inputs) {
      const v = bind[name];
      if (v === undefined) throw new Error(`embed ${g.name}: input '${name}' is not bound`);
      names.set(name, v);
    }
    const rename = (x: string) => {
      if (x === '') return x;
      let y = names.get(x);
      if (y === undefined) {
        y = `t${this.counter++}`;
        names.set(x, y);
      }
      return y;
    };
    for (const c of g.inits) this.inits.push({ ...c, name: rename(c.name) });
    for (const n of g.nodes) this.push({ ...n, inputs: n.inputs.map((x) => rename(g.read(x))), outputs: n.outputs.map(rename) });
    return Object.fromEntries(g.outputs.map(([name]) => [name, rename(name)]));
  }

  /** Nodes in the graph so far. */
  get size(): number {
    return this.nodes.length;
  }

  /** A float constant (a scalar when given a number: broadcasts against anything). */
  f(value: number | number[], dims?: number[]): string {
    const v = Array.isArray(value) ? value : [value];
    const name = `c${this.counter++}`;
    this.inits.push({ name, dims: dims ?? (Array.isArray(value) ? [v.length] : []), float: v });
    return name;
  }

  /** A named float32 constant holding `data` (a weight); the name must be new to the graph. */
  weight(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1))
      throw new Error(`onnx weight ${name}: ${data.length} values for [${dims.join(', ')}]`);
    if (this.inits.some((c) => c.name === name)) throw new Error(`onnx weight ${name}: the name is taken`);
    this.inits.push({ name, dims, raw: data });
    return name;
  }

  /** An int64 constant vector (shapes, axes, perms). */
  i64(values: number[]): string {
    const name = `c${this.counter++}`;
    this.inits.push({ name, dims: [values.length], int64: values });
    return name;
  }

  /** One node; returns its output name (or names, with `outputs` > 1). Empty input names are optional inputs left out. */
  op(opType: string, inputs: string[], attributes: Record<string, AttrValue> = {}, domain = ''): string {
    return this.opN(opType, inputs, 1, attributes, domain)[0]!;
  }

  opN(opType: string, inputs: string[], outputs: number, attributes: Record<string, AttrValue> = {}, domain = ''): string[] {
    const outs = Array.from({ length: outputs }, () => `t${this.counter++}`);
    this.push({ opType, domain, inputs, outputs: outs, attributes });
    return outs;
  }

  private push(n: Node): void {
    this.nodes.push(n);
    for (const o of n.outputs) this.producer.set(o, n);
  }

  /**
   * Marks `value` (a node's output) as the graph output `name`: its node writes `name`, and every node reading
   * `value`, made before or after, reads `name`. A graph input, or a value already an output, goes through an Identity.
   */
  output(name: string, value: string, dims: Dim[], doc?: string): void {
    const producer = this.producer.get(value);
    if (!producer || this.renamed.has(value) || this.outputs.some(([o]) => o === value)) {
      this.push({ opType: 'Identity', domain: '', inputs: [value], outputs: [name], attributes: {} });
    } else {
      producer.outputs = producer.outputs.map((o) => (o === value ? name : o));
      this.producer.set(name, producer);
      this.renamed.set(value, name);
    }
    this.outputs.push([name, dims, 'float32', doc]);
  }
  private read(x: string): string {
    return this.renamed.get(x) ?? x;
  }

  /** Drops the nodes and constants no graph output depends on (a traced forward's backward-only results). */
  prune(): void {
    const need = new Set(this.outputs.map(([o]) => o));
    this.nodes = this.nodes
      .reverse()
      .filter((n) => {
        if (!n.outputs.some((o) => need.has(o))) return false;
        for (const x of n.inputs) need.add(this.read(x));
        return true;
      })
      .reverse();
    this.inits = this.inits.filter((c) => need.has(c.name));
  }

  toBytes(info: ModelInfo = {}): Uint8Array {
    const { onnx } = require('onnx-proto') as typeof import('onnx-proto');
    const FLOAT = onnx.TensorProto.DataType.FLOAT;
    const A = onnx.AttributeProto.AttributeType;
    const valueInfo = ([name, dims, type, doc]: ValueInfo) => ({
      name,
      docString: doc ?? '',
      type: {
        tensorType: {
          elemType: type === 'int64' ? onnx.TensorProto.DataType.INT64 : FLOAT,
          shape: dims ? { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } : undefined,
        },
      },
    });
    const attribute = (name: string, v: AttrValue) =>
      typeof v === 'string'
        ? { name, type: A.STRING, s: new TextEncoder().encode(v) }
        : Array.isArray(v)
          ? { name, type: A.INTS, ints: v }
          : Number.isInteger(v) && !name.match(/^(alpha|beta|epsilon)$/)
            ? { name, type: A.INT, i: v }
            : { name, type: A.FLOAT, f: v };
    const model = onnx.ModelProto.create({
      irVersion: 9,
      producerName: 'emofuse',
      producerVersion: info.producerVersion ?? '',
      docString: info.doc ?? '',
      metadataProps: Object.entries(info.metadata ?? {}).map(([key, value]) => ({ key, value })),
      opsetImport: [
        { domain: '', version: OPSET },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: {
        name: this.name,
        node: this.nodes.map((n, i) => ({
          name: `n${i}`,
          opType: n.opType,
          domain: n.domain,
          input: n.inputs.map((x) => this.read(x)),
          output: n.outputs,
          attribute: Object.entries(n.attributes).map(([k, v]) => attribute(k, v)),
        })),
        initializer: this.inits.map((t) =>
          t.int64
            ? { name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: t.int64 }
            : t.raw
              ? { name: t.name, dims: t.dims, dataType: FLOAT, rawData: new Uint8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength) }
              : { name: t.name, dims: t.dims, dataType: FLOAT, floatData: t.float ?? [] },
        ),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
