// The `ort` backend: the fusion model on the CPU through onnxruntime-node's CPU execution provider (its MLAS
// matmuls are 10x faster than llvmpipe running our WGSL). Every op is a small ONNX graph built in code
// (../onnx/graph.ts) with symbolic dims, built once per key. The ops of a step are not run one by one: each op's
// graph is copied into one graph of the whole step (../onnx/recorder.ts), which runs as one session at the next
// read or flush, so activations never leave ORT and only parameters, moments, gradients and the loss come out
// (a step of the default model: 0.72-0.81x the time of running its 336 op graphs one by one, `bench train` rounds).
// The same recording, not run, is the ONNX export of the inference forward (`trace`, ../export/fusion-onnx.ts).
// Running each op at once in its own session (the old mode, with its cache-sized chunks) is a bench baseline now:
// packages/bench/src/baselines/ort-op-by-op.ts overrides `run`.
//
//   matmul            Gemm (or MatMul with Transposes for batched / transposed-A layouts) [+ bias] [-> Gelu tanh or erf] [+ c]
//   matmulBackward    dA = dc @ op(b)^T, dB = op(a)^T @ dc, dBias = column sums: Gemms (accumulating as C) and a ReduceSum
//   attention         per head: S = scale Q K^T (masked keys -1e30), lse = max + log sum exp, out = softmax(S) V
//   attentionBackward P = exp(S - lse); dV = P^T dO; dS = P (dO V^T - rowsum(dO * O)); dQ = scale dS K; dK = scale dS^T Q
//   layerNorm         LayerNormalization (opset 17; Mean and InvStdDev are its 2nd and 3rd outputs); backward in ops
//   geluBackward, add, axpy, meanPool (as a batched MatMul with mask / count), gradNorm (ReduceSumSquare of every
//   gradient in one graph), adamw (the update in ops, clip coefficient from the norm tensor in-graph)
//   gate, cross-entropy (targets and row weights from the labels, which the host wrote), concat / split along
//   time, dropout: x times a factor array whose zeros are the references' keep mask, the stateless PCG hash of
//   (seed, offset + i) computed in JS (ref.dropoutMask), so the mask is bit-identical to `wgsl` and `cpu`
//
// Tensors are Float32Arrays in JS memory (OrtTensor); a step's graph reads its inputs from them without a copy and
// writes what comes out into them (pre-allocated fetches).

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import type * as OrtTypes from 'onnxruntime-node';
import { ref } from '@emofuse/kernels';
import { CpuTensor } from './backend-cpu.ts';
import type { AdamwOpts, Backend, BTensor, DropoutOpts, GeluForm, MatmulBackwardOpts, MatmulDims, MatmulOpts } from './backend.ts';
import { OnnxGraph, type Dim } from '../onnx/graph.ts';
import { StepRecorder, type Feed } from '../onnx/recorder.ts';

const require = createRequire(import.meta.url);

export interface OrtBackendOptions {
  /** Intra-op threads of every session (default: the machine's core count). */
  threads?: number;
  /** Let ORT's worker threads spin between ops (default false). */
  spinning?: boolean;
}

/** An input of a traced graph: the recorder's feed, the label of the tensor it reads and where in it (elements). */
export interface TracedFeed extends Feed {
  label: string | undefined;
  offset: number;
}

/** A tensor of the ort backend: float32 data in JS memory (a CpuTensor, so the JS glue ops can use it). */
export class OrtTensor extends CpuTensor {
  /** Writable: bench's op-by-op baseline swaps in a spare array for an output that was also an input. */
  declare data: Float32Array;
}

function f32(t: BTensor): Float32Array {
  if (!(t instanceof OrtTensor)) throw new Error('ort backend: a tensor from another backend');
  return t.data;
}

function checkSize(op: string, name: string, t: BTensor, size: number): void {
  if (t.size !== size) throw new Error(`ort ${op}: ${name} has ${t.size} elements [${t.shape.join(', ')}], expected ${size}`);
}

/** Graph inputs or outputs of one op: name -> [data, dims]. */
export type Feeds = Record<string, [Float32Array | BigInt64Array, number[]]>;
export type Fetches = Record<string, [BTensor, number[]]>;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** geluBackward's graph of each GELU form: dx (+)= dy * gelu'(x), the old dx fed as 'dx0' when accumulating. */
const GELU_BACKWARD_GRAPHS: Record<GeluForm, (key: string, accumulate: boolean) => OnnxGraph> = {
  tanh: (key, accumulate) => {
    // with h = 0.5 (1 + tanh(u)) = sigmoid(2u), u = c (x + a x^3), c = sqrt(2/pi), a = 0.044715:
    // gelu'(x) = h + x h (1 - h) 2u' = h (1 + x (1 - h) (2c + 6ac x^2))   (13 passes instead of the tanh form's 15)
    const g = new OnnxGraph(key);
    const X = g.input('x', ['n']);
    const DY = g.input('dy', ['n']);
    const [a, c] = [0.044715, SQRT_2_OVER_PI];
    const x2 = g.op('Mul', [X, X]);
    const h = g.op('Sigmoid', [g.op('Mul', [X, g.op('Add', [g.op('Mul', [x2, g.f(2 * a * c)]), g.f(2 * c)])])]);
    const k = g.op('Add', [g.op('Mul', [x2, g.f(6 * a * c)]), g.f(2 * c)]);
    const inner = g.op('Add', [g.op('Mul', [g.op('Mul', [X, g.op('Sub', [g.f(1), h])]), k]), g.f(1)]);
    let out = g.op('Mul', [DY, g.op('Mul', [h, inner])]);
    if (accumulate) out = g.op('Add', [g.input('dx0', ['n']), out]);
    g.output('dx', out, ['n']);
    return g;
  },
  // gelu'(x) = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
  erf: (key, accumulate) => {
    const g = new OnnxGraph(key);
    const X = g.input('x', ['n']);
    const DY = g.input('dy', ['n']);
    const cdf = g.op('Add', [g.op('Mul', [g.op('Erf', [g.op('Mul', [X, g.f(Math.SQRT1_2)])]), g.f(0.5)]), g.f(0.5)]); // Phi(x)
    const pdf = g.op('Mul', [g.op('Exp', [g.op('Mul', [g.op('Mul', [X, X]), g.f(-0.5)])]), g.f(1 / Math.sqrt(2 * Math.PI))]); // phi(x)
    let out = g.op('Mul', [DY, g.op('Add', [cdf, g.op('Mul', [X, pdf])])]);
    if (accumulate) out = g.op('Add', [g.input('dx0', ['n']), out]);
    g.output('dx', out, ['n']);
    return g;
  },
};

const MASKED = -1e30;
/** Compiled step graphs kept (one per graph structure: the same for every batch shape of a model, a few per model). */
const STEP_SESSIONS = 8;
/**
 * Step graphs with more nodes than this are compiled without onnxruntime's graph optimizations (creating the session
 * is a synchronous call that grows faster than the graph; its optimizer passes were most of it: 40 layers, 25,577
 * nodes, 28 s of CPU with them, 5 s without, and steps no slower, their losses identical at 4 layers). The default
 * model's step (1 layer, 2,101 nodes) and up to 4 layers (3,907) keep 'all', as before.
 */
const STEP_OPTIMIZE_NODES = 5000;
const i64 = (...v: number[]) => BigInt64Array.from(v, BigInt);

/** The dropout factors of n elements: 1 / (1 - p) where the references' mask keeps, 0 where it drops. */
function dropoutFactors(n: number, o: DropoutOpts): Float32Array {
  const keep = ref.dropoutMask(n, o.p, o.seed, o.offset ?? 0);
  const scale = 1 / (1 - o.p);
  return Float32Array.from(keep, (k) => (k ? scale : 0));
}

export class OrtBackend implements Backend {
  readonly name = 'ort' as const;
  readonly description: string;
  protected sessions = new Map<string, Promise<OrtTypes.InferenceSession>>();
  /** session.run calls so far (for benchmarks and tests). */
  runs = 0;
  /** Each tensor's label (zeros / upload), by storage: what a traced graph reads is named by it. */
  private labels = new WeakMap<ArrayBufferLike, string>();
  /** The pending step graph, and the op graphs recorded into it by key. */
  private readonly rec = new StepRecorder((bytes, feeds, fetches, nodes) => this.runGraph(bytes, feeds, fetches, nodes));
  private graphs = new Map<string, OnnxGraph>();

  protected constructor(
    protected readonly ort: typeof OrtTypes,
    readonly threads: number,
    readonly spinning: boolean,
    mode = 'one graph a step',
  ) {
    this.description = `ort cpu (onnxruntime-node ${ortVersion()}, ${threads} thread${threads === 1 ? '' : 's'}, ${mode})`;
  }

  static create(opts: OrtBackendOptions = {}): OrtBackend {
    return new OrtBackend(requireOrt(), ortThreads(opts.threads), opts.spinning ?? false);
  }

  // ---------------------------------------------------------------------------------------------- memory

  zeros(shape: readonly number[], label?: string): BTensor {
    const t = new OrtTensor(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    if (label !== undefined) this.labels.set(t.data.buffer, label);
    return t;
  }
  upload(data: ArrayLike<number>, shape: readonly number[], label?: string): BTensor {
    const t = this.zeros(shape, label);
    this.write(t, data);
    return t;
  }
  view(t: BTensor, shape: readonly number[]): BTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > t.size) throw new Error(`ort view: [${shape.join(', ')}] does not fit in a tensor of ${t.size} [${t.shape.join(', ')}]`);
    return new OrtTensor(shape, f32(t).subarray(0, n));
  }
  write(t: BTensor, data: ArrayLike<number>): void {
    const o = f32(t);
    if (data.length !== o.length) throw new Error(`ort: writing ${data.length} values into ${o.length} [${t.shape.join(', ')}]`);
    this.rec.hostWrite(o);
    o.set(data);
  }
  async read(t: BTensor): Promise<Float32Array> {
    const o = f32(t);
    await this.rec.flush([o.buffer]);
    if (this.rec.isStale(o))
      throw new Error(`ort: reading [${t.shape.join(', ')}], scratch of a step that has run: activations are not kept after their step`);
    return o.slice();
  }
  async flush(): Promise<void> {
    await this.rec.flush();
  }
  /** Marks tensors whose values need not outlive a step (activations): a recorded step does not bring them out. */
  scratch(tensors: readonly BTensor[]): void {
    for (const t of tensors) this.rec.scratch.add(f32(t).buffer);
  }
  /**
   * The ops recorded since the last flush as one graph, not run (the ONNX export traces the inference forward so):
   * its inputs, each with the label of the tensor it reads and the region read (element offset, host data, dims),
   * and `outs` as values of the graph.
   */
  trace(outs: readonly BTensor[]): { graph: OnnxGraph; feeds: TracedFeed[]; values: string[] } {
    const { graph, feeds, values } = this.rec.trace(outs.map((t) => [f32(t), [...t.shape]]));
    return {
      graph,
      values,
      feeds: feeds.map((f) => ({
        ...f,
        label: f.data instanceof Float32Array ? this.labels.get(f.data.buffer) : undefined,
        offset: f.data instanceof Float32Array ? f.data.byteOffset >> 2 : 0,
      })),
    };
  }
  async destroy(): Promise<void> {
    this.rec.reset();
    const all = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(all.map((s) => s.release()));
  }

  // ---------------------------------------------------------------------------------------------- running graphs

  /** The session of graph `key`, created (and cached under key) on first use. */
  protected session(
    key: string,
    build: () => OnnxGraph | Uint8Array,
    level: 'all' | 'disabled' = 'all',
  ): Promise<OrtTypes.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      const model = build();
      s = this.ort.InferenceSession.create(model instanceof Uint8Array ? model : model.toBytes(), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: level,
        executionMode: 'sequential',
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: this.spinning ? '1' : '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Feeds as onnxruntime tensors (no copy). */
  protected tensors(feeds: Feeds): Record<string, OrtTypes.Tensor> {
    const T = this.ort.Tensor;
    return Object.fromEntries(
      Object.entries(feeds).map(([name, [data, dims]]) => [
        name,
        data instanceof BigInt64Array ? new T('int64', data, dims) : new T('float32', data, dims),
      ]),
    );
  }

  /** Runs one recorded step graph; its session is cached by the graph's bytes (the same for every batch shape). */
  private async runGraph(bytes: Uint8Array, feeds: Feeds, fetches: Record<string, Float32Array>, nodes: number): Promise<void> {
    const key = `step:${createHash('sha1').update(bytes).digest('hex')}`;
    const cached = this.sessions.get(key);
    if (cached) {
      this.sessions.delete(key); // most recently used last
      this.sessions.set(key, cached);
    }
    let session: OrtTypes.InferenceSession;
    try {
      session = await this.session(key, () => bytes, nodes > STEP_OPTIMIZE_NODES ? 'disabled' : 'all');
    } catch (err) {
      this.sessions.delete(key);
      throw new Error(`ort: compiling the step graph failed: ${(err as Error).message}`);
    }
    const steps = [...this.sessions.keys()].filter((k) => k.startsWith('step:'));
    if (steps.length > STEP_SESSIONS) {
      const old = this.sessions.get(steps[0]!)!;
      this.sessions.delete(steps[0]!);
      void old.then(
        (x) => x.release(),
        () => {},
      );
    }
    const T = this.ort.Tensor;
    const outputs = Object.fromEntries(Object.entries(fetches).map(([name, data]) => [name, new T('float32', data, [data.length])]));
    this.runs++;
    await session.run(this.tensors(feeds), outputs);
  }

  /**
   * An op: graph `key` (built on first use) over `feeds`, its outputs into `fetches`' tensors. Recorded into the
   * step's graph; bench's op-by-op baseline overrides this to run each op at once.
   */
  protected async run(key: string, build: () => OnnxGraph, feeds: Feeds, fetches: Fetches): Promise<void> {
    let g = this.graphs.get(key); // an op's graph depends on its key only: built once
    if (!g) {
      g = build();
      this.graphs.set(key, g);
    }
    this.rec.record(g, feeds, Object.fromEntries(Object.entries(fetches).map(([name, [t, dims]]) => [name, [f32(t), dims]])));
  }

  // ---------------------------------------------------------------------------------------------- matmul

  async matmul(a: BTensor, b: BTensor, c: BTensor, dims: MatmulDims, o: MatmulOpts = {}): Promise<void> {
    const { batch, M, N, K } = dims;
    checkSize('matmul', 'a', a, batch * M * K);
    checkSize('matmul', 'b', b, (o.broadcastB ? 1 : batch) * K * N);
    checkSize('matmul', 'c', c, batch * M * N);
    if (o.bias) checkSize('matmul', 'bias', o.bias, N);
    if (o.pre) checkSize('matmul', 'pre', o.pre, batch * M * N);
    const [ta, tb, bb, acc] = [!!o.transA, !!o.transB, !!o.broadcastB, !!o.accumulate];
    const flat = batch === 1 || (bb && !ta); // one 2-D Gemm over batch * M rows
    const erf = o.gelu === 'erf';
    const key = `matmul:${+flat}${+ta}${+tb}${+bb}${+!!o.bias}${erf ? 2 : +!!o.gelu}${+!!o.pre}${+acc}`;
    const R = batch * M;
    const aDims = flat ? (ta ? [K, R] : [R, K]) : ta ? [batch, K, M] : [batch, M, K];
    const bDims = bb || flat ? (tb ? [N, K] : [K, N]) : tb ? [batch, N, K] : [batch, K, N];
    const cDims = flat ? [R, N] : [batch, M, N];
    const build = () => {
      const g = new OnnxGraph(key);
      const sym = (flat ? ['R', 'K'] : ['Z', 'M', 'K']) as Dim[];
      const A = g.input('a', ta ? (flat ? ['K', 'R'] : ['Z', 'K', 'M']) : sym);
      const B = g.input('b', bb || flat ? (tb ? ['N', 'K'] : ['K', 'N']) : tb ? ['Z', 'N', 'K'] : ['Z', 'K', 'N']);
      const bias = o.bias ? g.input('bias', ['N']) : '';
      const cd: Dim[] = flat ? ['R', 'N'] : ['Z', 'M', 'N'];
      let y: string;
      // accumulating a plain product (the audio positions): the old c is the Gemm's C (beta 1), no Add pass
      const accC = flat && acc && !bias && !o.gelu && !o.pre;
      if (accC) {
        y = g.op('Gemm', [A, B, g.input('c', cd)], { transA: +ta, transB: +tb, beta: 1 });
      } else if (flat) {
        y = g.op('Gemm', bias ? [A, B, bias] : [A, B], { transA: +ta, transB: +tb });
      } else {
        const A2 = ta ? g.op('Transpose', [A], { perm: [0, 2, 1] }) : A;
        const B2 = tb ? g.op('Transpose', [B], { perm: bb ? [1, 0] : [0, 2, 1] }) : B;
        y = g.op('MatMul', [A2, B2]);
        if (bias) y = g.op('Add', [y, bias]);
      }
      // Gelu (opset 20): approximate 'tanh', or the default 'none', the exact erf form
      let out = o.gelu ? g.op('Gelu', [y], erf ? {} : { approximate: 'tanh' }) : y;
      if (acc && !accC) out = g.op('Add', [g.input('c', cd), out]);
      g.output('out', out, cd);
      if (o.pre) g.output('pre', y, cd);
      return g;
    };
    const feeds: Feeds = { a: [f32(a), aDims], b: [f32(b), bDims] };
    if (o.bias) feeds.bias = [f32(o.bias), [N]];
    if (acc) feeds.c = [f32(c), cDims];
    const fetches: Fetches = { out: [c, cDims] };
    if (o.pre) fetches.pre = [o.pre, cDims];
    await this.run(key, build, feeds, fetches);
  }

  matmulBackward(
    t: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor },
    dims: MatmulDims,
    o: MatmulBackwardOpts = {},
  ): Promise<void> {
    const { batch, M, N, K } = dims;
    checkSize('matmulBackward', 'dc', t.dc, batch * M * N);
    checkSize('matmulBackward', 'a', t.a, batch * M * K);
    checkSize('matmulBackward', 'b', t.b, (o.broadcastB ? 1 : batch) * K * N);
    if (t.dA) checkSize('matmulBackward', 'dA', t.dA, batch * M * K);
    if (t.dB) checkSize('matmulBackward', 'dB', t.dB, (o.broadcastB ? 1 : batch) * K * N);
    if (t.dBias) checkSize('matmulBackward', 'dBias', t.dBias, N);
    if (!t.dA && !t.dB && !t.dBias) return Promise.resolve();
    const [ta, tb, bb] = [!!o.transA, !!o.transB, !!o.broadcastB];
    const accB = !!o.accumulate;
    const accA = !!o.accumulateA;
    const flat = batch === 1 || (bb && !ta);
    const key = `matmulBackward:${+flat}${+ta}${+tb}${+bb}${+!!t.dA}${+!!t.dB}${+!!t.dBias}${+accA}${+accB}`;
    const R = batch * M;
    const aDims = flat ? (ta ? [K, R] : [R, K]) : ta ? [batch, K, M] : [batch, M, K];
    const bDims = bb || flat ? (tb ? [N, K] : [K, N]) : tb ? [batch, N, K] : [batch, K, N];
    const cDims = flat ? [R, N] : [batch, M, N];
    const feeds: Feeds = { dc: [f32(t.dc), cDims], a: [f32(t.a), aDims], b: [f32(t.b), bDims] };
    const fetches: Fetches = {};
    if (t.dA) fetches.dA = [t.dA, aDims];
    if (t.dB) fetches.dB = [t.dB, bDims];
    if (t.dBias) fetches.dBias = [t.dBias, [N]];
    if (accA && t.dA) feeds.dA0 = [f32(t.dA), aDims];
    if (accB && t.dB) feeds.dB0 = [f32(t.dB), bDims];
    if (accB && t.dBias) feeds.dBias0 = [f32(t.dBias), [N]];
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const aSym: Dim[] = flat ? (ta ? ['K', 'R'] : ['R', 'K']) : ta ? ['Z', 'K', 'M'] : ['Z', 'M', 'K'];
        const bSym: Dim[] = bb || flat ? (tb ? ['N', 'K'] : ['K', 'N']) : tb ? ['Z', 'N', 'K'] : ['Z', 'K', 'N'];
        const cSym: Dim[] = flat ? ['R', 'N'] : ['Z', 'M', 'N'];
        const dc = g.input('dc', cSym);
        const a = g.input('a', aSym);
        const b = g.input('b', bSym);
        const acc = (v: string, name: string, on: boolean, d: Dim[]) => (on ? g.op('Add', [g.input(name, d), v]) : v);
        if (flat) {
          // accumulating: the old value is the Gemm's C (beta 1), added inside the product instead of by another pass
          const gemm = (x: string, y: string, attrs: Record<string, number>, name: string, on: boolean, d: Dim[]) =>
            g.op('Gemm', on ? [x, y, g.input(name, d)] : [x, y], on ? { ...attrs, beta: 1 } : attrs);
          if (t.dA) {
            // dA = dc @ op(b)^T, or its transpose op(b) @ dc^T when a is stored transposed
            const dA = ta
              ? gemm(b, dc, { transA: +tb, transB: 1 }, 'dA0', accA, aSym)
              : gemm(dc, b, { transA: 0, transB: tb ? 0 : 1 }, 'dA0', accA, aSym);
            g.output('dA', dA, aSym);
          }
          if (t.dB) {
            // dB = op(a)^T @ dc, or its transpose dc^T @ op(a)
            const dB = tb
              ? gemm(dc, a, { transA: 1, transB: +ta }, 'dB0', accB, bSym)
              : gemm(a, dc, { transA: ta ? 0 : 1, transB: 0 }, 'dB0', accB, bSym);
            g.output('dB', dB, bSym);
          }
        } else {
          const T3 = (x: string) => g.op('Transpose', [x], { perm: [0, 2, 1] });
          const A2 = ta ? T3(a) : a; // [Z, M, K]
          const B2 = tb ? g.op('Transpose', [b], { perm: bb ? [1, 0] : [0, 2, 1] }) : b; // [(Z,) K, N]
          if (t.dA) {
            const dA2 = g.op('MatMul', [dc, g.op('Transpose', [B2], { perm: bb ? [1, 0] : [0, 2, 1] })]); // [Z, M, K]
            g.output('dA', acc(ta ? T3(dA2) : dA2, 'dA0', accA, aSym), aSym);
          }
          if (t.dB) {
            let dB2 = g.op('MatMul', [T3(A2), dc]); // [Z, K, N]
            if (bb) dB2 = g.op('ReduceSum', [dB2, g.i64([0])], { keepdims: 0 }); // [K, N]
            const dB = tb ? g.op('Transpose', [dB2], { perm: bb ? [1, 0] : [0, 2, 1] }) : dB2;
            g.output('dB', acc(dB, 'dB0', accB, bSym), bSym);
          }
        }
        if (t.dBias) {
          const db = g.op('ReduceSum', [dc, g.i64(flat ? [0] : [0, 1])], { keepdims: 0 });
          g.output('dBias', acc(db, 'dBias0', accB, ['N']), ['N']);
        }
        return g;
      },
      feeds,
      fetches,
    );
  }

  async geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate = false, form: GeluForm = 'tanh'): Promise<void> {
    const n = x.size;
    checkSize('geluBackward', 'dy', dy, n);
    checkSize('geluBackward', 'dx', dx, n);
    const key = form === 'erf' ? `geluBackward:erf:${+accumulate}` : `geluBackward:${+accumulate}`;
    const build = () => GELU_BACKWARD_GRAPHS[form](key, accumulate);
    const feeds: Feeds = { x: [f32(x), [n]], dy: [f32(dy), [n]] };
    if (accumulate) feeds.dx0 = [f32(dx), [n]];
    await this.run(key, build, feeds, { dx: [dx, [n]] });
  }

  // ---------------------------------------------------------------------------------------------- attention

  /** [B, T, C] -> [B, H, T, D] (or [B, H, D, T] with kT) inside a graph. */
  private static heads(g: OnnxGraph, x: string, H: number, D: number, kT = false): string {
    return g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, H, D])])], { perm: kT ? [0, 2, 3, 1] : [0, 2, 1, 3] });
  }
  /** [B, H, T, D] -> [B, T, C]. */
  private static merge(g: OnnxGraph, x: string): string {
    return g.op('Reshape', [g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), g.i64([0, 0, -1])]);
  }
  /**
   * Scores [B, H, Tq, Tk] = (scale q) k^T (+ -1e30 on masked keys), and with a mask the row factor [B, 1, 1]
   * (0 for a batch row whose keys are all masked: its output and gradients are 0, as in the references).
   */
  private static scores(
    g: OnnxGraph,
    q: string,
    k: string,
    H: number,
    D: number,
    masked: boolean,
  ): { s: string; qs: string; rowKeep?: string } {
    const qs = OrtBackend.heads(g, g.op('Mul', [q, g.f(1 / Math.sqrt(D))]), H, D); // scaled on [B, Tq, C], not on the scores
    let s = g.op('MatMul', [qs, OrtBackend.heads(g, k, H, D, true)]);
    if (!masked) return { s, qs };
    const keep = g.op('Cast', [g.op('Not', [g.op('Equal', [g.input('mask', ['B', 'Tk']), g.f(0)])])], { to: 1 }); // [B, Tk] 1 / 0
    const bias = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [keep, g.f(1)]), g.f(-MASKED)]), g.i64([1, 2])]); // [B, 1, 1, Tk] 0 / -1e30
    s = g.op('Add', [s, bias]);
    const rowKeep = g.op('Unsqueeze', [g.op('ReduceMax', [keep, g.i64([1])], { keepdims: 0 }), g.i64([1, 2])]); // [B, 1, 1]
    return { s, qs, rowKeep };
  }

  private attDims(op: string, q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, heads: number) {
    if (q.shape.length !== 3 || k.shape.length !== 3)
      throw new Error(`ort ${op}: q and k must be [B, T, C], got [${q.shape.join(', ')}] and [${k.shape.join(', ')}]`);
    const [B, Tq, C] = q.shape as [number, number, number];
    const Tk = k.shape[1]!;
    checkSize(op, 'k', k, B * Tk * C);
    checkSize(op, 'v', v, B * Tk * C);
    if (mask) checkSize(op, 'mask', mask, B * Tk);
    if (C % heads !== 0) throw new Error(`ort ${op}: width ${C} is not divisible by ${heads} heads`);
    return { B, Tq, Tk, C, H: heads, D: C / heads };
  }

  async attention(q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, heads: number): Promise<void> {
    const { B, Tq, Tk, C, H, D } = this.attDims('attention', q, k, v, mask, heads);
    checkSize('attention', 'out', out, B * Tq * C);
    checkSize('attention', 'lse', lse, B * H * Tq);
    const key = `attention:${H}:${D}:${+!!mask}`;
    const build = () => {
      const g = new OnnxGraph(key);
      const Q = g.input('q', ['B', 'Tq', C]);
      const K = g.input('k', ['B', 'Tk', C]);
      const V = g.input('v', ['B', 'Tk', C]);
      const { s, rowKeep } = OrtBackend.scores(g, Q, K, H, D, !!mask);
      const mx = g.op('ReduceMax', [s, g.i64([-1])], { keepdims: 1 }); // [B, H, Tq, 1]
      const e = g.op('Exp', [g.op('Sub', [s, mx])]);
      const l = g.op('ReduceSum', [e, g.i64([-1])], { keepdims: 1 }); // [B, H, Tq, 1]
      // out = (e V) / l: the normalisation on [B, H, Tq, D], not on the scores
      let o = OrtBackend.merge(g, g.op('Div', [g.op('MatMul', [e, OrtBackend.heads(g, V, H, D)]), l]));
      if (rowKeep) o = g.op('Mul', [o, rowKeep]);
      g.output('out', o, ['B', 'Tq', C]);
      // lse = max + log(sum); a fully masked row's scores are all -1e30, so its lse is -1e30, as the kernels write
      const lse4 = g.op('Max', [g.op('Add', [mx, g.op('Log', [l])]), g.f(MASKED)]);
      g.output('lse', g.op('Squeeze', [lse4, g.i64([-1])]), ['B', H, 'Tq']);
      return g;
    };
    const feeds: Feeds = { q: [f32(q), [B, Tq, C]], k: [f32(k), [B, Tk, C]], v: [f32(v), [B, Tk, C]] };
    if (mask) feeds.mask = [f32(mask), [B, Tk]];
    await this.run(key, build, feeds, { out: [out, [B, Tq, C]], lse: [lse, [B, H, Tq]] });
  }

  async attentionBackward(
    q: BTensor,
    k: BTensor,
    v: BTensor,
    mask: BTensor | null,
    out: BTensor,
    lse: BTensor,
    dout: BTensor,
    dq: BTensor,
    dk: BTensor,
    dv: BTensor,
    heads: number,
  ): Promise<void> {
    const { B, Tq, Tk, C, H, D } = this.attDims('attentionBackward', q, k, v, mask, heads);
    for (const [n, t] of [
      ['out', out],
      ['dout', dout],
      ['dq', dq],
    ] as const)
      checkSize('attentionBackward', n, t, B * Tq * C);
    for (const [n, t] of [
      ['dk', dk],
      ['dv', dv],
    ] as const)
      checkSize('attentionBackward', n, t, B * Tk * C);
    checkSize('attentionBackward', 'lse', lse, B * H * Tq);
    const key = `attentionBackward:${H}:${D}:${+!!mask}`;
    const build = () => {
      const g = new OnnxGraph(key);
      const Q = g.input('q', ['B', 'Tq', C]);
      const K = g.input('k', ['B', 'Tk', C]);
      const V = g.input('v', ['B', 'Tk', C]);
      const O = g.input('out', ['B', 'Tq', C]);
      const L = g.input('lse', ['B', H, 'Tq']);
      let dO = g.input('dout', ['B', 'Tq', C]);
      const { s, qs, rowKeep } = OrtBackend.scores(g, Q, K, H, D, !!mask);
      // a fully masked row has P = 1 everywhere (its scores and lse are all -1e30): zeroing its dout zeroes its dS and dV terms
      if (rowKeep) dO = g.op('Mul', [dO, rowKeep]);
      const p = g.op('Exp', [g.op('Sub', [s, g.op('Unsqueeze', [L, g.i64([-1])])])]); // [B, H, Tq, Tk]
      const dOh = OrtBackend.heads(g, dO, H, D); // [B, H, Tq, D]
      const T4 = (x: string) => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
      const dv4 = g.op('MatMul', [T4(p), dOh]); // [B, H, Tk, D]
      const dp = g.op('MatMul', [dOh, OrtBackend.heads(g, V, H, D, true)]); // [B, H, Tq, Tk]
      // drow [B, H, Tq, 1] = per-head sums of dout * out, taken on [B, Tq, H, D]
      const prod = g.op('Reshape', [g.op('Mul', [dO, O]), g.i64([0, 0, H, D])]);
      const drow = g.op('Unsqueeze', [
        g.op('Transpose', [g.op('ReduceSum', [prod, g.i64([-1])], { keepdims: 0 })], { perm: [0, 2, 1] }),
        g.i64([-1]),
      ]);
      const ds = g.op('Mul', [p, g.op('Sub', [dp, drow])]);
      const dq = g.op('Mul', [OrtBackend.merge(g, g.op('MatMul', [ds, OrtBackend.heads(g, K, H, D)])), g.f(1 / Math.sqrt(D))]);
      const dk4 = g.op('MatMul', [T4(ds), qs]); // [B, H, Tk, D], scale already in qs
      g.output('dq', dq, ['B', 'Tq', C]);
      g.output('dk', OrtBackend.merge(g, dk4), ['B', 'Tk', C]);
      g.output('dv', OrtBackend.merge(g, dv4), ['B', 'Tk', C]);
      return g;
    };
    const [qd, kd] = [
      [B, Tq, C],
      [B, Tk, C],
    ];
    const feeds: Feeds = {
      q: [f32(q), qd],
      k: [f32(k), kd],
      v: [f32(v), kd],
      out: [f32(out), qd],
      lse: [f32(lse), [B, H, Tq]],
      dout: [f32(dout), qd],
    };
    if (mask) feeds.mask = [f32(mask), [B, Tk]];
    await this.run(key, build, feeds, { dq: [dq, qd], dk: [dk, kd], dv: [dv, kd] });
  }

  // ---------------------------------------------------------------------------------------------- layer norm

  async layerNorm(x: BTensor, gamma: BTensor, beta: BTensor, y: BTensor, mean: BTensor, rstd: BTensor, eps = 1e-5): Promise<void> {
    const C = gamma.size;
    const R = x.size / C;
    if (!Number.isInteger(R)) throw new Error(`ort layerNorm: x has ${x.size} elements, not a multiple of C=${C}`);
    checkSize('layerNorm', 'beta', beta, C);
    checkSize('layerNorm', 'y', y, R * C);
    checkSize('layerNorm', 'mean', mean, R);
    checkSize('layerNorm', 'rstd', rstd, R);
    const key = eps === 1e-5 ? 'layerNorm' : `layerNorm:${eps}`;
    const build = () => {
      const g = new OnnxGraph(key);
      const [Y, Mn, Rs] = g.opN('LayerNormalization', [g.input('x', ['R', 'C']), g.input('gamma', ['C']), g.input('beta', ['C'])], 3, {
        axis: -1,
        epsilon: eps,
      });
      g.output('y', Y!, ['R', 'C']);
      g.output('mean', Mn!, ['R', 1]);
      g.output('rstd', Rs!, ['R', 1]);
      return g;
    };
    await this.run(
      key,
      build,
      { x: [f32(x), [R, C]], gamma: [f32(gamma), [C]], beta: [f32(beta), [C]] },
      {
        y: [y, [R, C]],
        mean: [mean, [R, 1]],
        rstd: [rstd, [R, 1]],
      },
    );
  }

  async layerNormBackward(
    x: BTensor,
    gamma: BTensor,
    mean: BTensor,
    rstd: BTensor,
    dy: BTensor,
    dx: BTensor,
    dgamma: BTensor,
    dbeta: BTensor,
  ): Promise<void> {
    const C = gamma.size;
    const R = x.size / C;
    checkSize('layerNormBackward', 'dy', dy, R * C);
    checkSize('layerNormBackward', 'dx', dx, R * C);
    checkSize('layerNormBackward', 'mean', mean, R);
    checkSize('layerNormBackward', 'rstd', rstd, R);
    checkSize('layerNormBackward', 'dgamma', dgamma, C);
    checkSize('layerNormBackward', 'dbeta', dbeta, C);
    const key = 'layerNormBackward';
    return this.run(
      key,
      () => {
        // xhat = (x - mean) rstd, g = dy gamma: dx = rstd (g - mean(g) - xhat mean(g xhat)); dgamma = sum dy xhat; dbeta = sum dy
        const g = new OnnxGraph(key);
        const X = g.input('x', ['R', 'C']);
        const Gm = g.input('gamma', ['C']);
        const Mn = g.input('mean', ['R', 1]);
        const Rs = g.input('rstd', ['R', 1]);
        const DY = g.input('dy', ['R', 'C']);
        const axC = g.i64([-1]);
        const xhat = g.op('Mul', [g.op('Sub', [X, Mn]), Rs]);
        const gg = g.op('Mul', [DY, Gm]);
        const m1 = g.op('ReduceMean', [gg, axC], { keepdims: 1 });
        const m2 = g.op('ReduceMean', [g.op('Mul', [gg, xhat]), axC], { keepdims: 1 });
        g.output('dx', g.op('Mul', [g.op('Sub', [g.op('Sub', [gg, m1]), g.op('Mul', [xhat, m2])]), Rs]), ['R', 'C']);
        const axR = g.i64([0]);
        g.output('dgamma', g.op('ReduceSum', [g.op('Mul', [DY, xhat]), axR], { keepdims: 0 }), ['C']);
        g.output('dbeta', g.op('ReduceSum', [DY, axR], { keepdims: 0 }), ['C']);
        return g;
      },
      { x: [f32(x), [R, C]], gamma: [f32(gamma), [C]], mean: [f32(mean), [R, 1]], rstd: [f32(rstd), [R, 1]], dy: [f32(dy), [R, C]] },
      {
        dx: [dx, [R, C]],
        dgamma: [dgamma, [C]],
        dbeta: [dbeta, [C]],
      },
    );
  }

  // ---------------------------------------------------------------------------------------------- elementwise

  add(a: BTensor, b: BTensor, out: BTensor, alpha = 1): Promise<void> {
    const n = a.size;
    checkSize('add', 'b', b, n);
    checkSize('add', 'out', out, n);
    return this.axpby('add', a, b, out, alpha);
  }
  axpy(x: BTensor, y: BTensor, alpha = 1): Promise<void> {
    checkSize('axpy', 'y', y, x.size);
    return this.axpby('axpy', y, x, y, alpha);
  }
  /** out = a + alpha b. */
  private async axpby(op: string, a: BTensor, b: BTensor, out: BTensor, alpha: number): Promise<void> {
    const n = a.size;
    const key = `axpby:${+(alpha === 1)}`;
    const build = () => {
      const g = new OnnxGraph(`${op} ${key}`);
      const A = g.input('a', ['n']);
      const B = g.input('b', ['n']);
      g.output('out', g.op('Add', [A, alpha === 1 ? B : g.op('Mul', [B, g.input('alpha', [1])])]), ['n']);
      return g;
    };
    const feeds: Feeds = { a: [f32(a), [n]], b: [f32(b), [n]] };
    if (alpha !== 1) feeds.alpha = [Float32Array.of(alpha), [1]];
    await this.run(key, build, feeds, { out: [out, [n]] });
  }

  dropout(x: BTensor, y: BTensor, o: DropoutOpts): Promise<void> {
    checkSize('dropout', 'y', y, x.size);
    return this.scaleBy(x, dropoutFactors(x.size, o), y);
  }
  dropoutBackward(dy: BTensor, dx: BTensor, o: DropoutOpts): Promise<void> {
    checkSize('dropoutBackward', 'dx', dx, dy.size);
    return this.scaleBy(dy, dropoutFactors(dy.size, o), dx);
  }
  /** y = x * factors, elementwise. */
  private scaleBy(x: BTensor, factors: Float32Array, y: BTensor): Promise<void> {
    const n = [x.size];
    const key = 'scale';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        g.output('y', g.op('Mul', [g.input('x', ['n']), g.input('m', ['n'])]), ['n']);
        return g;
      },
      { x: [f32(x), n], m: [factors, n] },
      { y: [y, n] },
    );
  }

  /** w [B, T] = mask / max(sum_t mask, 1), in a graph. */
  private static poolWeights(g: OnnxGraph): string {
    const m = g.input('mask', ['B', 'T']);
    return g.op('Div', [m, g.op('Max', [g.op('ReduceSum', [m, g.i64([1])], { keepdims: 1 }), g.f(1)])]);
  }

  /** Gather of table rows at the (float) ids. */
  embedding(ids: BTensor, table: BTensor, out: BTensor): Promise<void> {
    const [V, C] = table.shape as [number, number];
    const N = ids.size;
    checkSize('embedding', 'out', out, N * C);
    const key = 'embedding';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const idx = g.op('Cast', [g.input('ids', ['N'])], { to: 7 }); // int64
        g.output('out', g.op('Gather', [g.input('table', ['V', 'C']), idx], { axis: 0 }), ['N', 'C']);
        return g;
      },
      { ids: [f32(ids), [N]], table: [f32(table), [V, C]] },
      { out: [out, [N, C]] },
    );
  }
  /** ScatterND with reduction 'add' into zeros [V, C] (or into dtable): repeated ids sum. */
  embeddingBackward(ids: BTensor, dout: BTensor, dtable: BTensor, accumulate = false): Promise<void> {
    const [V, C] = dtable.shape as [number, number];
    const N = ids.size;
    checkSize('embeddingBackward', 'dout', dout, N * C);
    const key = `embeddingBackward:${+accumulate}`;
    const feeds: Feeds = { ids: [f32(ids), [N]], dout: [f32(dout), [N, C]] };
    if (accumulate) feeds.dtable0 = [f32(dtable), [V, C]];
    else feeds.shape = [i64(V, C), [2]];
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const idx = g.op('Unsqueeze', [g.op('Cast', [g.input('ids', ['N'])], { to: 7 }), g.i64([1])]); // [N, 1] int64
        const base = accumulate ? g.input('dtable0', ['V', 'C']) : g.op('ConstantOfShape', [g.inputI64('shape', [2])]);
        g.output('dtable', g.op('ScatterND', [base, idx, g.input('dout', ['N', 'C'])], { reduction: 'add' }), ['V', 'C']);
        return g;
      },
      feeds,
      { dtable: [dtable, [V, C]] },
    );
  }

  meanPool(x: BTensor, mask: BTensor, y: BTensor): Promise<void> {
    const [B, T, C] = x.shape as [number, number, number];
    checkSize('meanPool', 'mask', mask, B * T);
    checkSize('meanPool', 'y', y, B * C);
    const key = 'meanPool';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const X = g.input('x', ['B', 'T', 'C']);
        const w = g.op('Unsqueeze', [OrtBackend.poolWeights(g), g.i64([1])]); // [B, 1, T]
        g.output('y', g.op('Squeeze', [g.op('MatMul', [w, X]), g.i64([1])]), ['B', 'C']); // [B, C]
        return g;
      },
      { x: [f32(x), [B, T, C]], mask: [f32(mask), [B, T]] },
      { y: [y, [B, C]] },
    );
  }

  meanPoolBackward(mask: BTensor, dy: BTensor, dx: BTensor, accumulate = false): Promise<void> {
    const [B, T, C] = dx.shape as [number, number, number];
    checkSize('meanPoolBackward', 'mask', mask, B * T);
    checkSize('meanPoolBackward', 'dy', dy, B * C);
    const key = `meanPoolBackward:${+accumulate}`;
    const feeds: Feeds = { mask: [f32(mask), [B, T]], dy: [f32(dy), [B, C]] };
    if (accumulate) feeds.dx0 = [f32(dx), [B, T, C]];
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const w = g.op('Unsqueeze', [OrtBackend.poolWeights(g), g.i64([2])]); // [B, T, 1]
        const dY = g.op('Unsqueeze', [g.input('dy', ['B', 'C']), g.i64([1])]); // [B, 1, C]
        let out = g.op('Mul', [w, dY]);
        if (accumulate) out = g.op('Add', [g.input('dx0', ['B', 'T', 'C']), out]);
        g.output('dx', out, ['B', 'T', 'C']);
        return g;
      },
      feeds,
      { dx: [dx, [B, T, C]] },
    );
  }

  concatTime(a: BTensor, b: BTensor, out: BTensor, B: number, T1: number, T2: number, C: number): Promise<void> {
    checkSize('concatTime', 'a', a, B * T1 * C);
    checkSize('concatTime', 'b', b, B * T2 * C);
    checkSize('concatTime', 'out', out, B * (T1 + T2) * C);
    const key = 'concatTime';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        g.output('out', g.op('Concat', [g.input('a', ['B', 'T1', 'C']), g.input('b', ['B', 'T2', 'C'])], { axis: 1 }), ['B', 'T', 'C']);
        return g;
      },
      { a: [f32(a), [B, T1, C]], b: [f32(b), [B, T2, C]] },
      { out: [out, [B, T1 + T2, C]] },
    );
  }
  splitTime(dout: BTensor, da: BTensor, db: BTensor, B: number, T1: number, T2: number, C: number, accumulate = false): Promise<void> {
    checkSize('splitTime', 'dout', dout, B * (T1 + T2) * C);
    checkSize('splitTime', 'da', da, B * T1 * C);
    checkSize('splitTime', 'db', db, B * T2 * C);
    const key = `splitTime:${+accumulate}`;
    const [ad, bd] = [
      [B, T1, C],
      [B, T2, C],
    ];
    const feeds: Feeds = { dout: [f32(dout), [B, T1 + T2, C]], sizes: [i64(T1, T2), [2]] };
    if (accumulate) Object.assign(feeds, { da0: [f32(da), ad], db0: [f32(db), bd] });
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const [pa, pb] = g.opN('Split', [g.input('dout', ['B', 'T', 'C']), g.inputI64('sizes', [2])], 2, { axis: 1 }) as [string, string];
        g.output('da', accumulate ? g.op('Add', [g.input('da0', ['B', 'T1', 'C']), pa]) : pa, ['B', 'T1', 'C']);
        g.output('db', accumulate ? g.op('Add', [g.input('db0', ['B', 'T2', 'C']), pb]) : pb, ['B', 'T2', 'C']);
        return g;
      },
      feeds,
      { da: [da, ad], db: [db, bd] },
    );
  }
  /** y = Softmax(x) over the last axis. */
  softmax(x: BTensor, y: BTensor): Promise<void> {
    const N = x.shape[x.shape.length - 1]!;
    const shape = [x.size / N, N];
    checkSize('softmax', 'y', y, x.size);
    const key = 'softmax';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        g.output('y', g.op('Softmax', [g.input('x', ['R', 'N'])], { axis: -1 }), ['R', 'N']);
        return g;
      },
      { x: [f32(x), shape] },
      { y: [y, shape] },
    );
  }
  /** dx = y (dy - rowsum(dy y)). */
  softmaxBackward(y: BTensor, dy: BTensor, dx: BTensor): Promise<void> {
    const N = y.shape[y.shape.length - 1]!;
    const shape = [y.size / N, N];
    checkSize('softmaxBackward', 'dy', dy, y.size);
    checkSize('softmaxBackward', 'dx', dx, y.size);
    const key = 'softmaxBackward';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const [Y, D] = ['y', 'dy'].map((v) => g.input(v, ['R', 'N'])) as [string, string];
        const dot = g.op('ReduceSum', [g.op('Mul', [D, Y]), g.i64([1])], { keepdims: 1 }); // [R, 1]
        g.output('dx', g.op('Mul', [Y, g.op('Sub', [D, dot])]), ['R', 'N']);
        return g;
      },
      { y: [f32(y), shape], dy: [f32(dy), shape] },
      { dx: [dx, shape] },
    );
  }
  /** out = g x + (1 - g) y = y + g (x - y), g = sigmoid(s). */
  gate(s: BTensor, x: BTensor, y: BTensor, out: BTensor): Promise<void> {
    const n = [s.size];
    for (const [name, t] of [
      ['x', x],
      ['y', y],
      ['out', out],
    ] as const)
      checkSize('gate', name, t, s.size);
    const key = 'gate';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const [S, X, Y] = ['s', 'x', 'y'].map((v) => g.input(v, ['n'])) as [string, string, string];
        g.output('out', g.op('Add', [Y, g.op('Mul', [g.op('Sigmoid', [S]), g.op('Sub', [X, Y])])]), ['n']);
        return g;
      },
      { s: [f32(s), n], x: [f32(x), n], y: [f32(y), n] },
      { out: [out, n] },
    );
  }
  /** dx = dout g, dy = dout - dx, ds = dx (x - y) (1 - g). */
  gateBackward(s: BTensor, x: BTensor, y: BTensor, dout: BTensor, ds: BTensor, dx: BTensor, dy: BTensor): Promise<void> {
    const n = [s.size];
    for (const [name, t] of [
      ['x', x],
      ['y', y],
      ['dout', dout],
      ['ds', ds],
      ['dx', dx],
      ['dy', dy],
    ] as const)
      checkSize('gateBackward', name, t, s.size);
    const key = 'gateBackward';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const [S, X, Y, D] = ['s', 'x', 'y', 'dout'].map((v) => g.input(v, ['n'])) as [string, string, string, string];
        const G = g.op('Sigmoid', [S]);
        const DX = g.op('Mul', [D, G]);
        const [DS, DY] = [g.op('Mul', [g.op('Mul', [DX, g.op('Sub', [X, Y])]), g.op('Sub', [g.f(1), G])]), g.op('Sub', [D, DX])];
        g.output('ds', DS, ['n']);
        g.output('dx', DX, ['n']);
        g.output('dy', DY, ['n']);
        return g;
      },
      { s: [f32(s), n], x: [f32(x), n], y: [f32(y), n], dout: [f32(dout), n] },
      { ds: [ds, n], dx: [dx, n], dy: [dy, n] },
    );
  }

  /**
   * Weighted mean cross-entropy (the references' definition): the labels and class weights are host data (setInputs
   * writes them), so the targets q [B, K] (label smoothing included) and row weights w[y_b] / sum_b w[y_b] are made
   * here and fed; the graph does loss_b = logsumexp(z_b) - q_b . z_b, the weighted mean, and dz = w_b (softmax - q).
   */
  async crossEntropy(
    logits: BTensor,
    labels: BTensor,
    weights: BTensor,
    loss: BTensor,
    dlogits: BTensor,
    losses: BTensor,
    smoothing = 0,
  ): Promise<void> {
    const [B, K] = logits.shape as [number, number];
    checkSize('crossEntropy', 'labels', labels, B);
    checkSize('crossEntropy', 'weights', weights, K);
    checkSize('crossEntropy', 'loss', loss, 1);
    checkSize('crossEntropy', 'dlogits', dlogits, B * K);
    checkSize('crossEntropy', 'losses', losses, B);
    if (this.rec.writes(f32(labels)) || this.rec.writes(f32(weights))) await this.rec.flush();
    const [y, w] = [f32(labels), f32(weights)];
    ref.crossEntropyCheckLabels(y, K);
    const q = new Float32Array(B * K);
    const rowW = new Float32Array(B);
    const valid = new Float32Array(B);
    let sum = 0;
    for (let b = 0; b < B; b++) {
      if (y[b] === -1) continue;
      for (let k = 0; k < K; k++) q[b * K + k] = (k === y[b] ? 1 - smoothing : 0) + smoothing / K;
      valid[b] = 1;
      sum += w[y[b]!]!;
    }
    if (sum !== 0) for (let b = 0; b < B; b++) if (valid[b]) rowW[b] = w[y[b]!]! / sum;
    const key = 'crossEntropy';
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const Z = g.input('z', ['B', 'K']);
        const Q = g.input('q', ['B', 'K']);
        const W = g.input('w', ['B', 1]);
        const lse = g.op('ReduceLogSumExp', [Z, g.i64([1])], { keepdims: 1 }); // [B, 1]
        const l = g.op('Mul', [
          g.op('Sub', [lse, g.op('ReduceSum', [g.op('Mul', [Z, Q]), g.i64([1])], { keepdims: 1 })]),
          g.input('valid', ['B', 1]),
        ]);
        g.output('losses', g.op('Squeeze', [l, g.i64([1])]), ['B']);
        g.output('loss', g.op('Reshape', [g.op('ReduceSum', [g.op('Mul', [l, W])], { keepdims: 0 }), g.i64([1])]), [1]);
        g.output('dz', g.op('Mul', [g.op('Sub', [g.op('Exp', [g.op('Sub', [Z, lse])]), Q]), W]), ['B', 'K']);
        return g;
      },
      { z: [f32(logits), [B, K]], q: [q, [B, K]], w: [rowW, [B, 1]], valid: [valid, [B, 1]] },
      { losses: [losses, [B]], loss: [loss, [1]], dz: [dlogits, [B, K]] },
    );
  }

  // ---------------------------------------------------------------------------------------------- optimizer

  gradNorm(tensors: readonly BTensor[], out: BTensor): Promise<void> {
    checkSize('gradNorm', 'out', out, 1);
    const n = tensors.length;
    const key = `gradNorm:${n}`;
    const feeds: Feeds = {};
    for (const [i, t] of tensors.entries()) feeds[`g${i}`] = [f32(t), [t.size]];
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const sums = tensors.map((_, i) => g.op('ReduceSumSquare', [g.input(`g${i}`, [`n${i}`])], { keepdims: 1 })); // [1] each
        g.output('norm', g.op('Sqrt', [n === 1 ? sums[0]! : g.op('Sum', sums)]), [1]);
        return g;
      },
      feeds,
      { norm: [out, [1]] },
    );
  }

  adamw(p: BTensor, gr: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void> {
    const n = p.size;
    checkSize('adamw', 'grad', gr, n);
    checkSize('adamw', 'm', m, n);
    checkSize('adamw', 'v', v, n);
    const clip = !!o.clip && o.clip.maxNorm > 0;
    const bc1 = 1 - o.beta1 ** o.step;
    const bc2 = 1 - o.beta2 ** o.step;
    // scalars: beta1, 1 - beta1, beta2, 1 - beta2, 1 - lr wd, lr / bc1, 1 / sqrt(bc2), eps, maxNorm
    const k = Float32Array.of(
      o.beta1,
      1 - o.beta1,
      o.beta2,
      1 - o.beta2,
      1 - o.lr * o.weightDecay,
      o.lr / bc1,
      1 / Math.sqrt(bc2),
      o.eps,
      clip ? o.clip!.maxNorm : 0,
    );
    const key = `adamw:${+clip}`;
    const feeds: Feeds = { p: [f32(p), [n]], g: [f32(gr), [n]], m: [f32(m), [n]], v: [f32(v), [n]], k: [k, [9]] };
    if (clip) feeds.norm = [f32(o.clip!.norm), [1]];
    return this.run(
      key,
      () => {
        const g = new OnnxGraph(key);
        const [P, G, Mo, Vo] = ['p', 'g', 'm', 'v'].map((x) => g.input(x, ['n'])) as [string, string, string, string];
        const K = g.input('k', [9]);
        const kk = g.opN('Split', [K], 9, { axis: 0, num_outputs: 9 }); // nine [1] scalars
        const [b1, ib1, b2, ib2, decay, step, rbc2, eps, maxNorm] = kk as [
          string,
          string,
          string,
          string,
          string,
          string,
          string,
          string,
          string,
        ];
        // the clip coefficient s = min(1, maxNorm / (norm + 1e-6)) (clip_grad_norm_) goes into the [1] scalars, not over g
        const sc = clip ? g.op('Min', [g.f(1), g.op('Div', [maxNorm, g.op('Add', [g.input('norm', [1]), g.f(1e-6)])])]) : '';
        const ib1s = clip ? g.op('Mul', [ib1, sc]) : ib1; // (1 - beta1) s
        const ib2s = clip ? g.op('Mul', [ib2, g.op('Mul', [sc, sc])]) : ib2; // (1 - beta2) s^2
        const m2 = g.op('Add', [g.op('Mul', [Mo, b1]), g.op('Mul', [G, ib1s])]);
        const v2 = g.op('Add', [g.op('Mul', [Vo, b2]), g.op('Mul', [g.op('Mul', [G, G]), ib2s])]);
        const denom = g.op('Add', [g.op('Mul', [g.op('Sqrt', [v2]), rbc2]), eps]);
        const p2 = g.op('Sub', [g.op('Mul', [P, decay]), g.op('Div', [g.op('Mul', [m2, step]), denom])]);
        g.output('p2', p2, ['n']);
        g.output('m2', m2, ['n']);
        g.output('v2', v2, ['n']);
        return g;
      },
      feeds,
      { p2: [p, [n]], m2: [m, [n]], v2: [v, [n]] },
    );
  }
}

/** onnxruntime-node, or an error saying the ort backend needs it. */
export function requireOrt(): typeof OrtTypes {
  try {
    return require('onnxruntime-node') as typeof OrtTypes;
  } catch (err) {
    throw new Error(`the ort backend needs onnxruntime-node, which could not be loaded: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Intra-op threads: `threads`, checked, or the machine's core count. */
export function ortThreads(threads = availableParallelism()): number {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`ort backend: threads must be a positive integer, got ${threads}`);
  return threads;
}

export function ortVersion(): string {
  try {
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

/** The fast CPU backend (onnxruntime-node's CPU execution provider). */
export function createOrtBackend(opts: OrtBackendOptions = {}): OrtBackend {
  return OrtBackend.create(opts);
}

/** What `--backend auto` picks, and the reason to print. */
export interface AutoChoice {
  backend: 'wgsl' | 'ort';
  reason: string;
}

/**
 * `auto`: `wgsl` on a hardware GPU adapter; the ort backend on a software adapter (llvmpipe, lavapipe,
 * SwiftShader: the kernels runtime's AdapterDescription.isSoftware) or without any adapter, because MLAS on the
 * same cores is an order of magnitude faster than llvmpipe running our WGSL; `wgsl` on a software adapter only
 * when onnxruntime-node cannot be loaded. `adapter` is Gpu.create()'s adapter description, or null with the error.
 */
export function chooseAutoBackend(
  adapter: { isSoftware: boolean; device: string; description: string } | null,
  ortLoadError: string | null,
  adapterError = 'no WebGPU adapter',
): AutoChoice {
  const name = adapter && (adapter.device || adapter.description);
  if (adapter && !adapter.isSoftware) return { backend: 'wgsl', reason: `hardware GPU adapter ${name}` };
  const why = adapter ? `software adapter ${name}` : adapterError;
  if (!ortLoadError) return { backend: 'ort', reason: `${why}: onnxruntime's CPU kernels are faster than WGSL on the CPU` };
  if (adapter) return { backend: 'wgsl', reason: `${why}, and ${ortLoadError}` };
  throw new Error(`--backend auto: ${adapterError}, and ${ortLoadError}; use --backend cpu (slow) or install onnxruntime-node`);
}

/** null when onnxruntime-node loads, else why not (for chooseAutoBackend). */
export function ortLoadError(): string | null {
  try {
    require('onnxruntime-node');
    return null;
  } catch (err) {
    return `onnxruntime-node could not be loaded: ${(err as Error).message.split('\n')[0]}`;
  }
}
