// A training step recorded as one ONNX graph. The ort backend's ops each build a small graph (../fusion/backend-ort.ts);
// instead of running each in its own session.run, the backend hands them here, where they are copied into one
// graph that runs once, at the next read or flush. Why: onnxruntime-node 1.30 copies every output of every run
// into a freshly allocated ArrayBuffer, even into a pre-allocated fetch (about 0.36 ms per MiB here, on the main
// thread while ORT's workers wait; 407 MiB a step of the default model: 150 ms), and each run has its own fixed
// cost. In one graph the activations stay in ORT's arena and only the tensors that must outlive the step come out.
//
// Tensors are regions of JS memory (a Float32Array over some ArrayBuffer). Per buffer the recorder keeps which
// regions the pending graph has written and the graph value holding each; reading a region gives that value (a
// slice or concatenation when the regions differ, a graph input for the parts never written: parameters, the
// batch), writing one replaces it. Every number that depends on the batch's shape (Reshape targets, slice
// bounds) is an int64 graph input, so the graph bytes, and so the compiled session, are the same for every shape.
//
// At flush every written buffer comes out into its JS array, except buffers marked scratch (activations and their
// gradients: written and read inside the step, never needed after it). A scratch buffer that did not come out is
// stale: reading it, or recording an op that reads it before writing it, throws instead of returning old numbers.
//
// `trace` hands the pending graph over instead of running it: the ONNX export records the model's inference
// forward this way and turns the host inputs into weights and graph inputs (../export/fusion-onnx.ts).

import { OnnxGraph } from './graph.ts';

/** What the recorder runs a finished graph with: bytes, inputs, the arrays the outputs go to and its node count. */
export type GraphRunner = (
  bytes: Uint8Array,
  feeds: Record<string, [Float32Array | BigInt64Array, number[]]>,
  fetches: Record<string, Float32Array>,
  nodes: number,
) => Promise<void>;

/** A region [s, e) of a buffer (in float32 elements) holding graph value `v` of shape `dims` (null: flat). */
interface Segment {
  s: number;
  e: number;
  v: string;
  dims: number[] | null;
  /** Write order in the step: outputs come in this order, so the graph bytes do not depend on allocation history. */
  seq: number;
}

/** A graph input and the host data it reads at the run. */
export interface Feed {
  name: string;
  data: Float32Array | BigInt64Array;
  dims: number[];
}

const start = (a: Float32Array) => a.byteOffset >> 2;
const sameDims = (a: readonly number[] | null, b: readonly number[]) => !!a && a.length === b.length && a.every((x, i) => x === b[i]);

export class StepRecorder {
  private g = new OnnxGraph('step');
  private segs = new Map<ArrayBufferLike, Segment[]>();
  private feeds: Feed[] = [];
  private flats = new Map<string, string>();
  private seq = 0;
  /** Arrays for outputs over memory the graph also reads, by length, reused from step to step. */
  private spares = new Map<number, Float32Array[]>();
  /** Buffers whose contents need not outlive a step (set by the backend's `scratch`). */
  readonly scratch = new WeakSet<ArrayBufferLike>();
  private stale = new WeakSet<ArrayBufferLike>();
  /** Ops recorded into the pending graph. */
  ops = 0;

  constructor(private readonly runner: GraphRunner) {}

  get pending(): boolean {
    return this.ops > 0;
  }

  /** Whether the pending graph writes any part of a's buffer. */
  writes(a: Float32Array): boolean {
    return !!this.segs.get(a.buffer)?.length;
  }

  /** Whether a's buffer is scratch that the last run did not bring out. */
  isStale(a: Float32Array): boolean {
    return this.stale.has(a.buffer);
  }

  /** Copies op graph `op` into the step: its inputs read `feeds`' regions (int64 feeds are plain inputs), its outputs write `fetches`'. */
  record(
    op: OnnxGraph,
    feeds: Record<string, [Float32Array | BigInt64Array, number[]]>,
    fetches: Record<string, [Float32Array, number[]]>,
  ): void {
    const bind: Record<string, string> = {};
    for (const [name, [data, dims]] of Object.entries(feeds)) {
      bind[name] = data instanceof BigInt64Array ? this.input(data, dims, 'int64') : this.read(data, dims);
    }
    const out = this.g.embed(op, bind);
    for (const [name, [data, dims]] of Object.entries(fetches)) this.write(data, out[name]!, dims);
    this.ops++;
  }

  /**
   * The host is about to overwrite region a: the pending graph keeps the old values it reads (its inputs over a
   * are copied), and the host's values win over what the graph would have written there.
   */
  hostWrite(a: Float32Array): void {
    const [s0, e0] = [start(a), start(a) + a.length];
    for (const f of this.feeds) {
      if (f.data instanceof Float32Array && f.data.buffer === a.buffer && start(f.data) < e0 && s0 < start(f.data) + f.data.length)
        f.data = f.data.slice();
    }
    this.cut(a.buffer, s0, e0);
    if (a.length === a.buffer.byteLength >> 2) this.stale.delete(a.buffer);
  }

  /**
   * Runs the pending graph: every written buffer comes out into its array, except scratch ones not in `keep`.
   * Nothing runs when nothing would come out.
   */
  async flush(keep: readonly ArrayBufferLike[] = []): Promise<void> {
    if (!this.pending) return;
    const g = this.g;
    const outs: [Float32Array, string, number][] = []; // each written region, its value and write order
    for (const [buf, list] of this.segs) {
      if (!list.length) continue;
      const whole = list.reduce((n, x) => n + x.e - x.s, 0) === buf.byteLength >> 2;
      if (this.scratch.has(buf) && !keep.includes(buf)) {
        this.stale.add(buf);
        continue;
      }
      for (const x of list) outs.push([new Float32Array(buf, x.s * 4, x.e - x.s), x.v, x.seq]);
      if (whole) this.stale.delete(buf);
    }
    const fetches: Record<string, Float32Array> = {};
    const copies: [Float32Array, Float32Array][] = []; // [spare, target]: an output over memory the graph also reads
    const hostIn = this.feeds.flatMap((f) => (f.data instanceof Float32Array ? [f.data] : []));
    outs.sort((x, y) => x[2] - y[2]);
    for (const o of outs) o[1] = this.flat(o[1]);
    const seen = new Set<string>();
    for (const o of outs) {
      if (seen.has(o[1])) o[1] = g.op('Identity', [o[1]]); // one value into two regions: two outputs
      seen.add(o[1]);
    }
    outs.forEach(([target, v], i) => {
      g.output(`o${i}`, v, [`o${i}`]);
      const [s0, e0] = [start(target), start(target) + target.length];
      if (hostIn.some((x) => x.buffer === target.buffer && start(x) < e0 && s0 < start(x) + x.length)) {
        const spare = this.spares.get(target.length)?.pop() ?? new Float32Array(target.length);
        fetches[`o${i}`] = spare;
        copies.push([spare, target]);
      } else fetches[`o${i}`] = target;
    });
    const feeds = Object.fromEntries(this.feeds.map((f) => [f.name, [f.data, f.dims] as [Float32Array | BigInt64Array, number[]]]));
    this.reset();
    if (!outs.length) return;
    await this.runner(g.toBytes(), feeds, fetches, g.size);
    for (const [spare, target] of copies) {
      target.set(spare);
      const pool = this.spares.get(spare.length);
      if (pool) pool.push(spare);
      else this.spares.set(spare.length, [spare]);
    }
  }

  /**
   * The pending graph, not run: its inputs with the host data they would read, and regions `outs` as values of it
   * (shape `dims` each). The recorder starts over.
   */
  trace(outs: readonly [Float32Array, number[]][]): { graph: OnnxGraph; feeds: readonly Feed[]; values: string[] } {
    const values = outs.map(([a, dims]) => this.read(a, dims));
    const traced = { graph: this.g, feeds: this.feeds, values };
    this.reset();
    return traced;
  }

  /** Drops the pending graph (after a failed run, so the next step starts clean). */
  reset(): void {
    this.g = new OnnxGraph('step');
    this.segs.clear();
    this.feeds = [];
    this.flats.clear();
    this.ops = 0;
    this.seq = 0;
  }

  // ---------------------------------------------------------------------------------------------- regions

  /**
   * A graph input fed with `data` at the run. It declares no shape (not even a rank): with a symbolic shape on
   * each of a step's inputs (hundreds at 1 layer, 5,600 at 40) onnxruntime's session creation grew faster than the
   * graph (40 layers: minutes, on the main thread, deaf to Ctrl-C); the kernels read the fed tensors' shapes anyway.
   */
  private input(data: Float32Array | BigInt64Array, dims: number[], type: 'float32' | 'int64'): string {
    const name = `${type === 'int64' ? 's' : 'x'}${this.feeds.length}`;
    if (type === 'int64') this.g.inputI64(name, null);
    else this.g.input(name, null);
    this.feeds.push({ name, data, dims });
    return name;
  }
  private i64(values: number[]): string {
    return this.input(BigInt64Array.from(values, BigInt), [values.length], 'int64');
  }
  private flat(v: string): string {
    let f = this.flats.get(v);
    if (!f) {
      f = this.g.op('Reshape', [v, this.g.i64([-1])]);
      this.flats.set(v, f);
    }
    return f;
  }
  private slice(v: string, from: number, to: number): string {
    return this.g.op('Slice', [this.flat(v), this.i64([from]), this.i64([to]), this.g.i64([0])]);
  }
  private shaped(v: string, have: number[] | null, dims: number[] | null): string {
    if (!dims || sameDims(have, dims)) return v;
    return this.g.op('Reshape', [v, this.i64(dims)]);
  }

  /** Region a as a graph value of shape `dims` (null: flat). */
  private read(a: Float32Array, dims: number[] | null): string {
    const buf = a.buffer;
    const [s0, e0] = [start(a), start(a) + a.length];
    const cover = (this.segs.get(buf) ?? []).filter((x) => x.e > s0 && x.s < e0).sort((x, y) => x.s - y.s);
    const only = cover.length === 1 ? cover[0]! : undefined;
    if (only && only.s === s0 && only.e === e0) return this.shaped(only.v, only.dims, dims);
    // what the step did not write is read from host memory, which for stale scratch holds old numbers
    if (cover.reduce((n, x) => n + Math.min(e0, x.e) - Math.max(s0, x.s), 0) < a.length && this.stale.has(buf)) {
      throw new Error(
        'ort backend: an op reads scratch values from before the last flush (an activation read before it was written in this step)',
      );
    }
    const host = (p: number, q: number) => this.input(new Float32Array(buf, p * 4, q - p), [q - p], 'float32');
    if (!cover.length) return this.input(a, dims ?? [a.length], 'float32');
    const parts: string[] = [];
    let pos = s0;
    for (const x of cover) {
      if (x.s > pos) parts.push(host(pos, x.s));
      const [p, q] = [Math.max(pos, x.s), Math.min(e0, x.e)];
      parts.push(p === x.s && q === x.e ? this.flat(x.v) : this.slice(x.v, p - x.s, q - x.s));
      pos = q;
    }
    if (pos < e0) parts.push(host(pos, e0));
    const v = parts.length === 1 ? parts[0]! : this.g.op('Concat', parts, { axis: 0 });
    return this.shaped(v, null, dims);
  }

  /** Region a now holds graph value v (of shape dims). */
  private write(a: Float32Array, v: string, dims: number[]): void {
    const [s0, e0] = [start(a), start(a) + a.length];
    this.cut(a.buffer, s0, e0);
    if (!this.segs.has(a.buffer)) this.segs.set(a.buffer, []);
    this.segs.get(a.buffer)!.push({ s: s0, e: e0, v, dims, seq: this.seq++ });
  }

  /** Forgets what the graph wrote over [s0, e0) of buf, keeping the parts of segments outside it. */
  private cut(buf: ArrayBufferLike, s0: number, e0: number): void {
    const list = this.segs.get(buf);
    if (!list) return;
    const kept: Segment[] = [];
    for (const x of list) {
      if (x.e <= s0 || x.s >= e0) kept.push(x);
      else {
        if (x.s < s0) kept.push({ s: x.s, e: s0, v: this.slice(x.v, 0, s0 - x.s), dims: null, seq: x.seq });
        if (x.e > e0) kept.push({ s: e0, e: x.e, v: this.slice(x.v, e0 - x.s, x.e - x.s), dims: null, seq: x.seq });
      }
    }
    this.segs.set(buf, kept);
  }
}
