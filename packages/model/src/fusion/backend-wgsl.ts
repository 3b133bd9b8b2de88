// The `wgsl` backend: every op is one of our WebGPU kernels (@emofuse/kernels wrappers), the fusion model's
// glue included (axpy, concat/split along time, the gate variant's sigmoid mix).
// Tensors live on the device; dispatches are queued and submitted in order by `flush` (the runtime batches them),
// so a training step never reads anything back until the trainer asks for the loss.

import {
  Gpu,
  Tensor,
  adamwStep,
  addForward,
  axpy,
  concatTimeBackward,
  concatTimeForward,
  crossAttentionBackward,
  crossAttentionForward,
  crossEntropyForwardBackward,
  dropoutBackward,
  dropoutForward,
  embeddingBackward,
  embeddingForward,
  gateBackward,
  gateForward,
  geluBackward,
  gradNorm,
  layerNormBackward,
  layerNormForward,
  matmulBackward,
  matmulForward,
  meanPoolBackward,
  meanPoolForward,
  softmaxBackward,
  softmaxForward,
} from '@emofuse/kernels';
import type { AdamwOpts, Backend, BTensor, DropoutOpts, GeluForm, MatmulBackwardOpts, MatmulDims, MatmulOpts } from './backend.ts';

function t(x: BTensor): Tensor {
  if (!(x instanceof Tensor)) throw new Error('wgsl backend: a tensor from another backend');
  return x;
}

export class WgslBackend implements Backend {
  readonly name = 'wgsl' as const;
  readonly description: string;
  private constructor(
    readonly gpu: Gpu,
    private readonly owned: boolean,
  ) {
    const a = gpu.adapter;
    this.description = `wgsl on ${a.device || a.description} (${a.backend}${a.isSoftware ? ', software' : ''})`;
  }
  /**
   * On a given device (tests share one; `own` hands it over, so the backend destroys it), or on a new one from
   * Gpu.create() (destroyed with the backend).
   */
  static async create(gpu?: Gpu, own = false): Promise<WgslBackend> {
    return gpu ? new WgslBackend(gpu, own) : new WgslBackend(await Gpu.create(), true);
  }

  zeros(shape: readonly number[], label = 'tensor'): BTensor {
    return this.gpu.zeros(shape, label);
  }
  upload(data: ArrayLike<number>, shape: readonly number[], label = 'upload'): BTensor {
    return this.gpu.upload(Float32Array.from(data), shape, label);
  }
  view(x: BTensor, shape: readonly number[]): BTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > x.size) throw new Error(`wgsl view: [${shape.join(', ')}] does not fit in a tensor of ${x.size} [${x.shape.join(', ')}]`);
    return new Tensor(this.gpu, t(x).buffer, shape); // the kernels read their sizes from the shapes, never the buffer's
  }
  write(x: BTensor, data: ArrayLike<number>): void {
    this.gpu.write(t(x), data instanceof Float32Array ? data : Float32Array.from(data));
  }
  read(x: BTensor): Promise<Float32Array> {
    return this.gpu.read(t(x));
  }
  flush(): Promise<void> {
    return this.gpu.flush();
  }
  async destroy(): Promise<void> {
    if (this.owned) await this.gpu.destroy();
    else await this.gpu.finish();
  }

  matmul(a: BTensor, b: BTensor, c: BTensor, dims: MatmulDims, o: MatmulOpts = {}): Promise<void> {
    return matmulForward(this.gpu, t(a), t(b), t(c), dims, {
      transA: o.transA,
      transB: o.transB,
      broadcastB: o.broadcastB,
      bias: o.bias && t(o.bias),
      gelu: o.gelu,
      pre: o.pre && t(o.pre),
      accumulate: o.accumulate,
    });
  }
  matmulBackward(
    x: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor },
    dims: MatmulDims,
    o: MatmulBackwardOpts = {},
  ): Promise<void> {
    return matmulBackward(
      this.gpu,
      { dc: t(x.dc), a: t(x.a), b: t(x.b), dA: x.dA && t(x.dA), dB: x.dB && t(x.dB), dBias: x.dBias && t(x.dBias) },
      dims,
      o,
    );
  }
  geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate = false, form: GeluForm = 'tanh'): Promise<void> {
    return geluBackward(this.gpu, t(x), t(dy), t(dx), accumulate, form);
  }
  attention(q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, heads: number): Promise<void> {
    return crossAttentionForward(this.gpu, t(q), t(k), t(v), mask && t(mask), t(out), t(lse), { heads });
  }
  attentionBackward(
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
    return crossAttentionBackward(this.gpu, t(q), t(k), t(v), mask && t(mask), t(out), t(lse), t(dout), t(dq), t(dk), t(dv), { heads });
  }
  layerNorm(x: BTensor, gamma: BTensor, beta: BTensor, y: BTensor, mean: BTensor, rstd: BTensor, eps = 1e-5): Promise<void> {
    return layerNormForward(this.gpu, t(x), t(gamma), t(beta), t(y), t(mean), t(rstd), eps);
  }
  layerNormBackward(
    x: BTensor,
    gamma: BTensor,
    mean: BTensor,
    rstd: BTensor,
    dy: BTensor,
    dx: BTensor,
    dgamma: BTensor,
    dbeta: BTensor,
  ): Promise<void> {
    return layerNormBackward(this.gpu, t(x), t(gamma), t(mean), t(rstd), t(dy), t(dx), t(dgamma), t(dbeta));
  }
  add(a: BTensor, b: BTensor, out: BTensor, alpha = 1): Promise<void> {
    return addForward(this.gpu, t(a), t(b), t(out), alpha);
  }
  axpy(x: BTensor, y: BTensor, alpha = 1): Promise<void> {
    return axpy(this.gpu, t(x), t(y), alpha);
  }
  dropout(x: BTensor, y: BTensor, o: DropoutOpts): Promise<void> {
    return dropoutForward(this.gpu, t(x), t(y), o);
  }
  dropoutBackward(dy: BTensor, dx: BTensor, o: DropoutOpts): Promise<void> {
    return dropoutBackward(this.gpu, t(dy), t(dx), o);
  }
  embedding(ids: BTensor, table: BTensor, out: BTensor): Promise<void> {
    return embeddingForward(this.gpu, t(ids), t(table), t(out));
  }
  embeddingBackward(ids: BTensor, dout: BTensor, dtable: BTensor, accumulate = false): Promise<void> {
    return embeddingBackward(this.gpu, t(ids), t(dout), t(dtable), accumulate);
  }
  meanPool(x: BTensor, mask: BTensor, y: BTensor): Promise<void> {
    return meanPoolForward(this.gpu, t(x), t(mask), t(y));
  }
  meanPoolBackward(mask: BTensor, dy: BTensor, dx: BTensor, accumulate = false): Promise<void> {
    return meanPoolBackward(this.gpu, t(mask), t(dy), t(dx), accumulate);
  }
  concatTime(a: BTensor, b: BTensor, out: BTensor, B: number, T1: number, T2: number, C: number): Promise<void> {
    return concatTimeForward(this.gpu, t(a), t(b), t(out), { B, T1, T2, C });
  }
  splitTime(dout: BTensor, da: BTensor, db: BTensor, B: number, T1: number, T2: number, C: number, accumulate = false): Promise<void> {
    return concatTimeBackward(this.gpu, t(dout), t(da), t(db), { B, T1, T2, C }, accumulate);
  }
  softmax(x: BTensor, y: BTensor): Promise<void> {
    return softmaxForward(this.gpu, t(x), t(y));
  }
  softmaxBackward(y: BTensor, dy: BTensor, dx: BTensor): Promise<void> {
    return softmaxBackward(this.gpu, t(y), t(dy), t(dx));
  }
  gate(s: BTensor, x: BTensor, y: BTensor, out: BTensor): Promise<void> {
    return gateForward(this.gpu, t(s), t(x), t(y), t(out));
  }
  gateBackward(s: BTensor, x: BTensor, y: BTensor, dout: BTensor, ds: BTensor, dx: BTensor, dy: BTensor): Promise<void> {
    return gateBackward(this.gpu, t(s), t(x), t(y), t(dout), t(ds), t(dx), t(dy));
  }
  crossEntropy(
    logits: BTensor,
    labels: BTensor,
    weights: BTensor,
    loss: BTensor,
    dlogits: BTensor,
    losses: BTensor,
    smoothing = 0,
  ): Promise<void> {
    return crossEntropyForwardBackward(this.gpu, t(logits), t(labels), t(weights), t(loss), t(dlogits), t(losses), smoothing);
  }
  gradNorm(tensors: readonly BTensor[], out: BTensor): Promise<void> {
    return gradNorm(this.gpu, tensors.map(t), t(out));
  }
  adamw(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void> {
    return adamwStep(this.gpu, t(p), t(g), t(m), t(v), {
      lr: o.lr,
      step: o.step,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      clip: o.clip && { norm: t(o.clip.norm), maxNorm: o.clip.maxNorm },
    });
  }
}
