// The `cpu` backend: every op is the float64 CPU reference of @emofuse/kernels (`ref`), results stored in
// float32 arrays (what the GPU holds, so the two backends are compared like for like) or float64 arrays (for
// the whole-model gradient check against finite differences). Slow and simple by design.

import { ref } from '@emofuse/kernels';
import type { AdamwOpts, Backend, BTensor, DropoutOpts, GeluForm, MatmulBackwardOpts, MatmulDims, MatmulOpts } from './backend.ts';

export type CpuPrecision = 'f32' | 'f64';

export class CpuTensor implements BTensor {
  readonly size: number;
  constructor(
    readonly shape: readonly number[],
    readonly data: Float32Array | Float64Array,
  ) {
    this.size = data.length;
  }
}

function d(t: BTensor): Float32Array | Float64Array {
  if (!(t instanceof CpuTensor)) throw new Error('cpu backend: a tensor from another backend');
  return t.data;
}

function check(name: string, t: BTensor, size: number): void {
  if (t.size !== size) throw new Error(`cpu ${name}: expected ${size} elements, got ${t.size} [${t.shape.join(', ')}]`);
}

/** dst = src, or dst += src. */
function store(dst: BTensor, src: ArrayLike<number>, accumulate = false): void {
  const o = d(dst);
  if (src.length !== o.length) throw new Error(`cpu: writing ${src.length} values into ${o.length}`);
  if (accumulate) for (let i = 0; i < o.length; i++) o[i] = o[i]! + src[i]!;
  else o.set(src);
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description: string;
  constructor(readonly precision: CpuPrecision = 'f32') {
    this.description = `cpu (float64 references, ${precision === 'f32' ? 'float32' : 'float64'} storage)`;
  }

  private alloc(n: number): Float32Array | Float64Array {
    return this.precision === 'f32' ? new Float32Array(n) : new Float64Array(n);
  }
  zeros(shape: readonly number[]): BTensor {
    return new CpuTensor(shape, this.alloc(shape.reduce((a, b) => a * b, 1)));
  }
  upload(data: ArrayLike<number>, shape: readonly number[]): BTensor {
    const t = this.zeros(shape);
    this.write(t, data);
    return t;
  }
  view(t: BTensor, shape: readonly number[]): BTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > t.size) throw new Error(`cpu view: [${shape.join(', ')}] does not fit in a tensor of ${t.size} [${t.shape.join(', ')}]`);
    return new CpuTensor(shape, d(t).subarray(0, n));
  }
  write(t: BTensor, data: ArrayLike<number>): void {
    store(t, data);
  }
  async read(t: BTensor): Promise<Float32Array | Float64Array> {
    return d(t).slice();
  }
  async flush(): Promise<void> {}
  async destroy(): Promise<void> {}

  async matmul(a: BTensor, b: BTensor, c: BTensor, dims: MatmulDims, o: MatmulOpts = {}): Promise<void> {
    check('matmul c', c, dims.batch * dims.M * dims.N);
    const r = ref.matmulForward(d(a), d(b), dims, {
      transA: o.transA,
      transB: o.transB,
      broadcastB: o.broadcastB,
      bias: o.bias && d(o.bias),
      gelu: o.gelu,
    });
    if (o.pre) store(o.pre, r.pre);
    store(c, r.out, o.accumulate);
  }
  async matmulBackward(
    t: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor },
    dims: MatmulDims,
    o: MatmulBackwardOpts = {},
  ): Promise<void> {
    const r = ref.matmulBackward(d(t.dc), d(t.a), d(t.b), dims, o);
    if (t.dA) store(t.dA, r.dA, o.accumulateA);
    if (t.dB) store(t.dB, r.dB, o.accumulate);
    if (t.dBias) store(t.dBias, r.dBias, o.accumulate);
  }
  async geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate = false, form: GeluForm = 'tanh'): Promise<void> {
    store(dx, ref.geluBackward(d(x), d(dy), form), accumulate);
  }
  private attDims(q: BTensor, k: BTensor, heads: number) {
    const [B, Tq, C] = q.shape as [number, number, number];
    return { B, Tq, Tk: k.shape[1]!, H: heads, D: C / heads };
  }
  async attention(q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, heads: number): Promise<void> {
    const r = ref.crossAttentionForward(d(q), d(k), d(v), mask && d(mask), this.attDims(q, k, heads));
    store(out, r.out);
    store(lse, r.lse);
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
    const r = ref.crossAttentionBackward(d(q), d(k), d(v), mask && d(mask), d(out), d(lse), d(dout), this.attDims(q, k, heads));
    store(dq, r.dq);
    store(dk, r.dk);
    store(dv, r.dv);
  }
  async layerNorm(x: BTensor, gamma: BTensor, beta: BTensor, y: BTensor, mean: BTensor, rstd: BTensor, eps = 1e-5): Promise<void> {
    const C = gamma.size;
    const r = ref.layerNormForward(d(x), d(gamma), d(beta), x.size / C, C, eps);
    store(y, r.y);
    store(mean, r.mean);
    store(rstd, r.rstd);
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
    const r = ref.layerNormBackward(d(x), d(gamma), d(mean), d(rstd), d(dy), x.size / C, C);
    store(dx, r.dx);
    store(dgamma, r.dgamma);
    store(dbeta, r.dbeta);
  }
  async add(a: BTensor, b: BTensor, out: BTensor, alpha = 1): Promise<void> {
    store(out, ref.addForward(d(a), d(b), alpha));
  }
  async axpy(x: BTensor, y: BTensor, alpha = 1): Promise<void> {
    check('axpy y', y, x.size);
    store(y, ref.axpy(d(x), d(y), alpha));
  }
  async dropout(x: BTensor, y: BTensor, o: DropoutOpts): Promise<void> {
    store(y, ref.dropoutForward(d(x), o.p, o.seed, o.offset ?? 0));
  }
  async dropoutBackward(dy: BTensor, dx: BTensor, o: DropoutOpts): Promise<void> {
    store(dx, ref.dropoutBackward(d(dy), o.p, o.seed, o.offset ?? 0));
  }
  async embedding(ids: BTensor, table: BTensor, out: BTensor): Promise<void> {
    const [V, C] = table.shape as [number, number];
    check('embedding out', out, ids.size * C);
    store(out, ref.embeddingForward(d(ids), d(table), V, C));
  }
  async embeddingBackward(ids: BTensor, dout: BTensor, dtable: BTensor, accumulate = false): Promise<void> {
    const [V, C] = dtable.shape as [number, number];
    check('embeddingBackward dout', dout, ids.size * C);
    store(dtable, ref.embeddingBackward(d(ids), d(dout), V, C), accumulate);
  }
  async meanPool(x: BTensor, mask: BTensor, y: BTensor): Promise<void> {
    const [B, T, C] = x.shape as [number, number, number];
    store(y, ref.meanPoolForward(d(x), d(mask), B, T, C));
  }
  async meanPoolBackward(mask: BTensor, dy: BTensor, dx: BTensor, accumulate = false): Promise<void> {
    const [B, T, C] = dx.shape as [number, number, number];
    store(dx, ref.meanPoolBackward(d(mask), d(dy), B, T, C), accumulate);
  }
  async concatTime(a: BTensor, b: BTensor, out: BTensor, B: number, T1: number, T2: number, C: number): Promise<void> {
    check('concatTime out', out, B * (T1 + T2) * C);
    store(out, ref.concatTimeForward(d(a), d(b), { B, T1, T2, C }));
  }
  async splitTime(
    dout: BTensor,
    da: BTensor,
    db: BTensor,
    B: number,
    T1: number,
    T2: number,
    C: number,
    accumulate = false,
  ): Promise<void> {
    const r = ref.concatTimeBackward(d(dout), { B, T1, T2, C });
    store(da, r.da, accumulate);
    store(db, r.db, accumulate);
  }
  async softmax(x: BTensor, y: BTensor): Promise<void> {
    const N = x.shape[x.shape.length - 1]!;
    check('softmax y', y, x.size);
    store(y, ref.softmaxForward(d(x), x.size / N, N));
  }
  async softmaxBackward(y: BTensor, dy: BTensor, dx: BTensor): Promise<void> {
    const N = y.shape[y.shape.length - 1]!;
    store(dx, ref.softmaxBackward(d(y), d(dy), y.size / N, N));
  }
  async gate(s: BTensor, x: BTensor, y: BTensor, out: BTensor): Promise<void> {
    store(out, ref.gateForward(d(s), d(x), d(y)));
  }
  async gateBackward(s: BTensor, x: BTensor, y: BTensor, dout: BTensor, ds: BTensor, dx: BTensor, dy: BTensor): Promise<void> {
    const r = ref.gateBackward(d(s), d(x), d(y), d(dout));
    store(ds, r.ds);
    store(dx, r.dx);
    store(dy, r.dy);
  }
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
    const r = ref.crossEntropyForward(d(logits), d(labels), d(weights), B, K, smoothing);
    store(loss, [r.loss]);
    store(losses, r.losses);
    store(dlogits, ref.crossEntropyBackward(d(logits), d(labels), d(weights), B, K, smoothing));
  }
  async gradNorm(tensors: readonly BTensor[], out: BTensor): Promise<void> {
    store(out, [ref.gradNormForward(tensors.map(d))]);
  }
  async adamw(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void> {
    const r = ref.adamwStep(d(p), d(g), d(m), d(v), {
      lr: o.lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      step: o.step,
      ...(o.clip ? { maxNorm: o.clip.maxNorm, gradNorm: d(o.clip.norm)[0]! } : {}),
    });
    store(p, r.p);
    store(m, r.m);
    store(v, r.v);
  }
}
