// A small ONNX graph builder and its protobuf writer, with no dependency (it runs in Node and in a browser).
// Only what an exporter of a feed-forward model needs: float / int64 constants, nodes with int, float, ints and
// string attributes, inputs and outputs with named (dynamic) or fixed dimensions, and metadata entries.
// Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ...);
// test/cli/export.test.ts decodes a written model with the onnx-proto package as an independent check.

/** TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;

export type OnnxAttribute = number | number[] | string | { float: number };

/** A dimension: a fixed size, or a name for a dynamic one ('batch', 'text_len'). */
export type OnnxDim = number | string;

interface NodeRec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, OnnxAttribute>;
  name: string;
}

interface TensorRec {
  name: string;
  dims: number[];
  type: number;
  raw: Uint8Array;
}

interface ValueRec {
  name: string;
  type: number;
  dims: OnnxDim[];
  doc?: string;
}

export class OnnxGraph {
  private nodes: NodeRec[] = [];
  private initializers: TensorRec[] = [];
  private inputs: ValueRec[] = [];
  private outputs: ValueRec[] = [];
  private counter = 0;
  private names = new Set<string>();

  constructor(readonly name: string) {}

  /** A name not used yet, from a readable stem ('self.0.q' -> 'self.0.q', then 'self.0.q_1', ...). */
  fresh(stem: string): string {
    let n = stem;
    while (this.names.has(n)) n = `${stem}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  input(name: string, dims: OnnxDim[], doc?: string, type = ONNX_FLOAT): string {
    this.names.add(name);
    this.inputs.push({ name, type, dims, doc });
    return name;
  }

  output(name: string, dims: OnnxDim[], doc?: string, type = ONNX_FLOAT): void {
    this.outputs.push({ name, type, dims, doc });
  }

  /** A float32 constant (weights). */
  float(name: string, dims: number[], data: ArrayLike<number>): string {
    const n = this.fresh(name);
    const f = Float32Array.from(data);
    if (f.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`onnx constant ${name}: ${f.length} values for shape [${dims}]`);
    this.initializers.push({ name: n, dims, type: ONNX_FLOAT, raw: new Uint8Array(f.buffer) });
    return n;
  }

  /** An int64 constant (shapes, axes, slice bounds). */
  int64(name: string, values: number[], dims = [values.length]): string {
    const n = this.fresh(name);
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push({ name: n, dims, type: ONNX_INT64, raw });
    return n;
  }

  /** One node with one output; returns the output's name (`out` or a fresh name from the op). */
  op(op: string, inputs: string[], attrs: Record<string, OnnxAttribute> = {}, out?: string): string {
    const o = out ?? this.fresh(`${op.toLowerCase()}`);
    if (out) this.names.add(out);
    this.nodes.push({ op, inputs, outputs: [o], attrs, name: this.fresh(`n_${o}`) });
    return o;
  }

  /** The model as ONNX protobuf bytes (opset 17 of the default domain). */
  encode(o: { producer: string; producerVersion: string; doc?: string; metadata: Record<string, string>; opset?: number }): Uint8Array {
    const w = new ProtoWriter();
    w.int(1, 8); // ir_version (ONNX 1.10+, opset 15-17)
    w.string(2, o.producer);
    w.string(3, o.producerVersion);
    if (o.doc) w.string(6, o.doc);
    w.message(7, (g) => this.encodeGraph(g));
    w.message(8, (m) => {
      m.string(1, '');
      m.int(2, o.opset ?? 17);
    });
    for (const [key, value] of Object.entries(o.metadata)) {
      w.message(14, (m) => {
        m.string(1, key);
        m.string(2, value);
      });
    }
    return w.finish();
  }

  private encodeGraph(g: ProtoWriter): void {
    for (const n of this.nodes) {
      g.message(1, (m) => {
        for (const i of n.inputs) m.string(1, i);
        for (const x of n.outputs) m.string(2, x);
        m.string(3, n.name);
        m.string(4, n.op);
        for (const [name, v] of Object.entries(n.attrs)) m.message(5, (a) => encodeAttribute(a, name, v));
      });
    }
    g.string(2, this.name);
    for (const t of this.initializers) {
      g.message(5, (m) => {
        for (const d of t.dims) m.int(1, d);
        m.int(2, t.type);
        m.string(8, t.name);
        m.bytes(9, t.raw);
      });
    }
    const valueInfo = (field: number, v: ValueRec) =>
      g.message(field, (m) => {
        m.string(1, v.name);
        m.message(2, (ty) =>
          ty.message(1, (tt) => {
            tt.int(1, v.type);
            tt.message(2, (sh) => {
              for (const d of v.dims) sh.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
            });
          }),
        );
        if (v.doc) m.string(3, v.doc);
      });
    for (const v of this.inputs) valueInfo(11, v);
    for (const v of this.outputs) valueInfo(12, v);
  }
}

// AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, INTS 7).
function encodeAttribute(a: ProtoWriter, name: string, v: OnnxAttribute): void {
  a.string(1, name);
  if (typeof v === 'string') {
    a.string(4, v);
    a.int(20, 3);
  } else if (Array.isArray(v)) {
    for (const x of v) a.int(8, x);
    a.int(20, 7);
  } else if (typeof v === 'object') {
    a.float32(2, v.float);
    a.int(20, 1);
  } else if (Number.isInteger(v)) {
    a.int(3, v);
    a.int(20, 2);
  } else {
    a.float32(2, v);
    a.int(20, 1);
  }
}

/** Protobuf wire format: varints (wire type 0), fixed32 floats (5), length-delimited bytes and messages (2). */
class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  private varint(v: number | bigint): void {
    // int64 fields: negative values are their 64-bit two's complement, 10 bytes.
    let x = BigInt.asUintN(64, BigInt(v));
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      this.scratch.push(byte);
    } while (x);
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float32(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.flushScratch();
    this.chunks.push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, fill: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    fill(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    this.flushScratch();
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
