// The ort backend as it ran before a step was recorded into one graph (packages/model backend-ort.ts): every op
// runs at once in its own cached InferenceSession. Kept as `bench train`'s baseline ('ort op by op') and for the
// per-op profile (`bench train --profile`), validated and timed like any variant; the product only records.
// It is the product's backend with `run` overridden (the same op graphs), plus what made op-by-op runs fast:
//
// - cache-sized chunks: ORT runs a graph node by node over whole tensors, so a chain of elementwise ops over a
//   [B, T, F] tensor streams it through memory once per node; on chunks of CHUNK elements that stay in cache the
//   same chain is several times faster (GELU backward on 3.1M elements: ~5x on 2 cores). matmul (MLAS writes the
//   bias or old c into the output before adding the product, and GELU reads it after: [6144, 256] @ [256, 256] +
//   bias, 2 threads, 1024-row chunks 15-20% less CPU time), matmul's dA, GELU backward, layer-norm backward (the
//   later chunks' dgamma / dbeta added by axpy), attention (by batch rows whose scores stay in cache) and axpy with
//   alpha run on row ranges, each range an op on views of the tensors.
// - SMALL: AdamW of a tensor of at most SMALL values runs on the float64 reference in JS: a session run of its
//   20-node graph costs ~0.2 ms of fixed overhead (the N-API hop, a thread-pool wake-up per node), more than the
//   reference takes on 16K values, and 33 of the default model's 55 parameters are vectors of at most C or F.
// - spare arrays: an output that is also an input (accumulate, axpy, AdamW) is written into a spare array that
//   then becomes the tensor's data (the old one the spare); a view, or a tensor with views, is copied back instead.

import type * as OrtTypes from 'onnxruntime-node';
import {
  CpuBackend,
  OrtBackend,
  OrtTensor,
  requireOrt,
  ortThreads,
  type AdamwOpts,
  type BTensor,
  type Feeds,
  type Fetches,
  type GeluForm,
  type MatmulBackwardOpts,
  type MatmulDims,
  type MatmulOpts,
  type OnnxGraph,
} from '@emofuse/model';

/** Elements per tensor per run of the chunked ops (1 MiB of float32). */
export const CHUNK = 1 << 18;
/** Elements up to which AdamW runs on the float64 reference in JS. */
export const SMALL = 1 << 14;

export interface OrtOpByOpOptions {
  threads?: number;
  spinning?: boolean;
  /** Elements per tensor per run of the chunked ops (default CHUNK; tests use tiny chunks to cover the loops). */
  chunk?: number;
}

/** [r0, r1) row ranges of about `chunk` elements. */
export function rowChunks(rows: number, rowSize: number, chunk: number): [number, number][] {
  const step = Math.max(1, Math.floor(chunk / rowSize));
  const out: [number, number][] = [];
  for (let r = 0; r < rows; r += step) out.push([r, Math.min(rows, r + step)]);
  return out;
}

/** The data of an ort tensor. */
const f32 = (t: BTensor) => (t as OrtTensor).data;

/** Rows [r0, r1) of t (rowSize elements each) as a tensor of `shape` sharing its storage. */
function rows(t: BTensor, r0: number, r1: number, rowSize: number, shape: number[]): OrtTensor {
  return new OrtTensor(shape, f32(t).subarray(r0 * rowSize, r1 * rowSize));
}

/** Whether two arrays share memory. */
function overlaps(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

export class OrtOpByOp extends OrtBackend {
  /** Spare arrays by length, for outputs that are also inputs. */
  private spare = new Map<number, Float32Array[]>();
  /** Storage that views point into: results are copied into it, never swapped. */
  private pinned = new WeakSet<ArrayBufferLike>();
  /** Small AdamW updates (float64 references on float32 storage). */
  private js = new CpuBackend('f32');

  private constructor(
    ort: typeof OrtTypes,
    threads: number,
    spinning: boolean,
    readonly chunk: number,
  ) {
    super(ort, threads, spinning, 'op by op');
  }

  static override create(opts: OrtOpByOpOptions = {}): OrtOpByOp {
    const chunk = opts.chunk ?? CHUNK;
    if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`ort op by op: chunk must be a positive integer, got ${chunk}`);
    return new OrtOpByOp(requireOrt(), ortThreads(opts.threads), opts.spinning ?? false, chunk);
  }

  override view(t: BTensor, shape: readonly number[]): BTensor {
    this.pinned.add(f32(t).buffer);
    return super.view(t, shape);
  }

  /** Runs the op now in its cached session; outputs go straight into their tensors (or a spare, swapped in after). */
  protected override async run(key: string, build: () => OnnxGraph, feeds: Feeds, fetches: Fetches): Promise<void> {
    const session = await this.session(key, build);
    const T = this.ort.Tensor;
    const ins = Object.values(feeds).map(([data]) => data);
    const outputs: Record<string, OrtTypes.Tensor> = {};
    const swaps: [OrtTensor, Float32Array][] = [];
    for (const [name, [t, dims]] of Object.entries(fetches)) {
      let data = f32(t);
      if (ins.some((x) => x instanceof Float32Array && overlaps(x, data))) {
        data = this.spare.get(data.length)?.pop() ?? new Float32Array(data.length);
        swaps.push([t as OrtTensor, data]);
      }
      outputs[name] = new T('float32', data, dims);
    }
    this.runs++;
    await session.run(this.tensors(feeds), outputs);
    for (const [t, data] of swaps) {
      let old = t.data;
      if (this.pinned.has(old.buffer) || old.length !== old.buffer.byteLength >> 2) {
        old.set(data); // a view or viewed storage stays: the result is copied back and the spare recycled
        old = data;
      } else t.data = data;
      const spare = this.spare.get(old.length);
      if (spare) spare.push(old);
      else this.spare.set(old.length, [old]);
    }
  }

  // ---------------------------------------------------------------------------------------------- chunked ops

  override async matmul(a: BTensor, b: BTensor, c: BTensor, dims: MatmulDims, o: MatmulOpts = {}): Promise<void> {
    const { batch, M, N, K } = dims;
    const flat = batch === 1 || (!!o.broadcastB && !o.transA);
    const R = batch * M;
    const chunks = flat && !o.transA ? rowChunks(R, N, this.chunk) : [];
    if (chunks.length < 2) return super.matmul(a, b, c, dims, o);
    for (const [r0, r1] of chunks) {
      const part = (t: BTensor, w: number) => rows(t, r0, r1, w, [r1 - r0, w]);
      await super.matmul(
        part(a, K),
        b,
        part(c, N),
        { batch: 1, M: r1 - r0, N, K },
        { ...o, broadcastB: false, pre: o.pre && part(o.pre, N) },
      );
    }
  }

  override async matmulBackward(
    t: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor },
    dims: MatmulDims,
    o: MatmulBackwardOpts = {},
  ): Promise<void> {
    const { batch, M, N, K } = dims;
    const flat = batch === 1 || (!!o.broadcastB && !o.transA);
    const R = batch * M;
    if (!(flat && !o.transA && t.dA && R > Math.floor(this.chunk / Math.max(N, K)))) return super.matmulBackward(t, dims, o);
    // dA (+)= dc @ op(b)^T row chunk by row chunk (each an independent product), then dB and dBias in one run
    for (const [r0, r1] of rowChunks(R, Math.max(N, K), this.chunk)) {
      const r = r1 - r0;
      await super.matmulBackward(
        { dc: rows(t.dc, r0, r1, N, [r, N]), a: rows(t.a, r0, r1, K, [r, K]), b: t.b, dA: rows(t.dA, r0, r1, K, [r, K]) },
        { batch: 1, M: r, N, K },
        { transB: o.transB, accumulateA: o.accumulateA },
      );
    }
    if (t.dB || t.dBias) await super.matmulBackward({ ...t, dA: undefined }, dims, { ...o, accumulateA: false });
  }

  override async geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate = false, form: GeluForm = 'tanh'): Promise<void> {
    const n = x.size;
    for (const [o0, o1] of rowChunks(n, 1, this.chunk)) {
      const part = (t: BTensor) => rows(t, o0, o1, 1, [o1 - o0]);
      await super.geluBackward(part(x), part(dy), part(dx), accumulate, form);
    }
  }

  /** Batch rows whose scores stay in cache: the query-side and key-side views of each chunk, its mask and lse rows. */
  private *attentionChunks(q: BTensor, k: BTensor, mask: BTensor | null, lse: BTensor, heads: number) {
    const [B, Tq, C] = q.shape as [number, number, number];
    const Tk = k.shape[1]!;
    for (const [b0, b1] of rowChunks(B, heads * Tq * Tk, 2 * this.chunk)) {
      yield {
        bq: (t: BTensor) => rows(t, b0, b1, Tq * C, [b1 - b0, Tq, C]),
        bk: (t: BTensor) => rows(t, b0, b1, Tk * C, [b1 - b0, Tk, C]),
        mask: mask && rows(mask, b0, b1, Tk, [b1 - b0, Tk]),
        lse: rows(lse, b0, b1, heads * Tq, [b1 - b0, heads, Tq]),
      };
    }
  }

  override async attention(
    q: BTensor,
    k: BTensor,
    v: BTensor,
    mask: BTensor | null,
    out: BTensor,
    lse: BTensor,
    heads: number,
  ): Promise<void> {
    for (const c of this.attentionChunks(q, k, mask, lse, heads)) {
      await super.attention(c.bq(q), c.bk(k), c.bk(v), c.mask, c.bq(out), c.lse, heads);
    }
  }

  override async attentionBackward(
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
    for (const c of this.attentionChunks(q, k, mask, lse, heads)) {
      await super.attentionBackward(c.bq(q), c.bk(k), c.bk(v), c.mask, c.bq(out), c.lse, c.bq(dout), c.bq(dq), c.bk(dk), c.bk(dv), heads);
    }
  }

  override async layerNormBackward(
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
    const chunks = rowChunks(x.size / C, C, this.chunk);
    if (chunks.length < 2) return super.layerNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    const part = [this.zeros([C]), this.zeros([C])]; // a later chunk's dgamma, dbeta
    for (const [i, [r0, r1]] of chunks.entries()) {
      const [rc, r] = [(t: BTensor) => rows(t, r0, r1, C, [r1 - r0, C]), (t: BTensor) => rows(t, r0, r1, 1, [r1 - r0])];
      await super.layerNormBackward(rc(x), gamma, r(mean), r(rstd), rc(dy), rc(dx), i ? part[0]! : dgamma, i ? part[1]! : dbeta);
      if (i) {
        await super.axpy(part[0]!, dgamma);
        await super.axpy(part[1]!, dbeta);
      }
    }
  }

  override async add(a: BTensor, b: BTensor, out: BTensor, alpha = 1): Promise<void> {
    // a lone Add runs whole (nothing to keep in cache between nodes); with alpha, Mul then Add run in chunks
    if (alpha === 1) return super.add(a, b, out);
    for (const [o0, o1] of rowChunks(a.size, 1, this.chunk)) {
      const part = (t: BTensor) => rows(t, o0, o1, 1, [o1 - o0]);
      await super.add(part(a), part(b), part(out), alpha);
    }
  }

  override async axpy(x: BTensor, y: BTensor, alpha = 1): Promise<void> {
    if (alpha === 1) return super.axpy(x, y);
    for (const [o0, o1] of rowChunks(x.size, 1, this.chunk)) {
      const part = (t: BTensor) => rows(t, o0, o1, 1, [o1 - o0]);
      await super.axpy(part(x), part(y), alpha);
    }
  }

  override adamw(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void> {
    return p.size <= SMALL ? this.js.adamw(p, g, m, v, o) : super.adamw(p, g, m, v, o);
  }
}
