// The `wgsl` backend: every op is one of our WebGPU kernels (@emofuse/kernels wrappers), plus five small glue
// kernels of the fusion model (./shaders: axpy, concat/split along time, the gate variant's sigmoid mix).
// Tensors live on the device; dispatches are queued and submitted in order by `flush` (the runtime batches them),
// so a training step never reads anything back until the trainer asks for the loss.

import {
  Gpu, Tensor, adamwStep, addForward, crossAttentionBackward, crossAttentionForward, crossEntropyForwardBackward,
  dropoutBackward, dropoutForward, geluBackward, gradNorm, layerNormBackward, layerNormForward, matmulBackward,
  matmulForward, meanPoolBackward, meanPoolForward, type KernelDef,
} from '@emofuse/kernels';
import axpySource from '../../../../shaders/axpy.fwd.wgsl';
import concatSource from '../../../../shaders/concat-time.fwd.wgsl';
import splitSource from '../../../../shaders/concat-time.bwd.wgsl';
import gateFwdSource from '../../../../shaders/gate.fwd.wgsl';
import gateBwdSource from '../../../../shaders/gate.bwd.wgsl';
import type { AdamwOpts, Backend, BTensor, DropoutOpts, MatmulBackwardOpts, MatmulDims, MatmulOpts } from './backend.ts';

const WG = 256;
const r = (name: string) => ({ name, access: 'read' as const });
const w = (name: string) => ({ name, access: 'read_write' as const });

export const axpyKernel: KernelDef = {
  name: 'axpy.fwd', source: axpySource, entryPoint: 'main', bindings: [r('x'), w('y')],
  params: [['n', 'u32'], ['alpha', 'f32']], overrides: { WG }, foldable: true,
};
export const concatTimeKernel: KernelDef = {
  name: 'concat-time.fwd', source: concatSource, entryPoint: 'main', bindings: [r('a'), r('b'), w('out')],
  params: [['B', 'u32'], ['T1', 'u32'], ['T2', 'u32'], ['C', 'u32']], overrides: { WG }, foldable: true,
};
export const splitTimeKernel: KernelDef = {
  name: 'concat-time.bwd', source: splitSource, entryPoint: 'main', bindings: [r('dout'), w('da'), w('db')],
  params: [['B', 'u32'], ['T1', 'u32'], ['T2', 'u32'], ['C', 'u32'], ['accumulate', 'u32']], overrides: { WG }, foldable: true,
};
export const gateForwardKernel: KernelDef = {
  name: 'gate.fwd', source: gateFwdSource, entryPoint: 'main', bindings: [r('s'), r('x'), r('y'), w('out')],
  params: [['n', 'u32']], overrides: { WG }, foldable: true,
};
export const gateBackwardKernel: KernelDef = {
  name: 'gate.bwd', source: gateBwdSource, entryPoint: 'main',
  bindings: [r('s'), r('x'), r('y'), r('dout'), w('ds'), w('dx'), w('dy')],
  params: [['n', 'u32']], overrides: { WG }, foldable: true,
};
/** The fusion model's own kernels, for a Params-order test beside the kernels package's. */
export const fusionKernels: readonly KernelDef[] = [axpyKernel, concatTimeKernel, splitTimeKernel, gateForwardKernel, gateBackwardKernel];

function t(x: BTensor): Tensor {
  if (!(x instanceof Tensor)) throw new Error('wgsl backend: a tensor from another backend');
  return x;
}

export class WgslBackend implements Backend {
  readonly name = 'wgsl' as const;
  readonly description: string;
  private constructor(readonly gpu: Gpu, private readonly owned: boolean) {
    const a = gpu.adapter;
    this.description = `wgsl on ${a.device || a.description} (${a.backend}${a.isSoftware ? ', software' : ''})`;
  }
  /** On a given device (tests share one), or on a new one from Gpu.create() (destroyed with the backend). */
  static async create(gpu?: Gpu): Promise<WgslBackend> {
    return gpu ? new WgslBackend(gpu, false) : new WgslBackend(await Gpu.create(), true);
  }

  zeros(shape: readonly number[], label = 'tensor'): BTensor {
    return this.gpu.zeros(shape, label);
  }
  upload(data: ArrayLike<number>, shape: readonly number[], label = 'upload'): BTensor {
    return this.gpu.upload(Float32Array.from(data), shape, label);
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
      transA: o.transA, transB: o.transB, broadcastB: o.broadcastB, bias: o.bias && t(o.bias), gelu: o.gelu,
      pre: o.pre && t(o.pre), accumulate: o.accumulate,
    });
  }
  matmulBackward(
    x: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor }, dims: MatmulDims, o: MatmulBackwardOpts = {},
  ): Promise<void> {
    return matmulBackward(
      this.gpu,
      { dc: t(x.dc), a: t(x.a), b: t(x.b), dA: x.dA && t(x.dA), dB: x.dB && t(x.dB), dBias: x.dBias && t(x.dBias) },
      dims,
      o,
    );
  }
  geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate = false): Promise<void> {
    return geluBackward(this.gpu, t(x), t(dy), t(dx), accumulate);
  }
  attention(q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, heads: number): Promise<void> {
    return crossAttentionForward(this.gpu, t(q), t(k), t(v), mask && t(mask), t(out), t(lse), { heads });
  }
  attentionBackward(
    q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, dout: BTensor,
    dq: BTensor, dk: BTensor, dv: BTensor, heads: number,
  ): Promise<void> {
    return crossAttentionBackward(this.gpu, t(q), t(k), t(v), mask && t(mask), t(out), t(lse), t(dout), t(dq), t(dk), t(dv), { heads });
  }
  layerNorm(x: BTensor, gamma: BTensor, beta: BTensor, y: BTensor, mean: BTensor, rstd: BTensor): Promise<void> {
    return layerNormForward(this.gpu, t(x), t(gamma), t(beta), t(y), t(mean), t(rstd));
  }
  layerNormBackward(x: BTensor, gamma: BTensor, mean: BTensor, rstd: BTensor, dy: BTensor, dx: BTensor, dgamma: BTensor, dbeta: BTensor): Promise<void> {
    return layerNormBackward(this.gpu, t(x), t(gamma), t(mean), t(rstd), t(dy), t(dx), t(dgamma), t(dbeta));
  }
  add(a: BTensor, b: BTensor, out: BTensor, alpha = 1): Promise<void> {
    return addForward(this.gpu, t(a), t(b), t(out), alpha);
  }
  axpy(x: BTensor, y: BTensor, alpha = 1): Promise<void> {
    if (x.size !== y.size) throw new Error(`axpy.fwd: x has ${x.size} elements, y ${y.size}`);
    return this.gpu.dispatch(axpyKernel, { tensors: [t(x), t(y)], params: { n: x.size, alpha }, grid: [Math.ceil(x.size / WG)] });
  }
  dropout(x: BTensor, y: BTensor, o: DropoutOpts): Promise<void> {
    return dropoutForward(this.gpu, t(x), t(y), o);
  }
  dropoutBackward(dy: BTensor, dx: BTensor, o: DropoutOpts): Promise<void> {
    return dropoutBackward(this.gpu, t(dy), t(dx), o);
  }
  meanPool(x: BTensor, mask: BTensor, y: BTensor): Promise<void> {
    return meanPoolForward(this.gpu, t(x), t(mask), t(y));
  }
  meanPoolBackward(mask: BTensor, dy: BTensor, dx: BTensor, accumulate = false): Promise<void> {
    return meanPoolBackward(this.gpu, t(mask), t(dy), t(dx), accumulate);
  }
  concatTime(a: BTensor, b: BTensor, out: BTensor, B: number, T1: number, T2: number, C: number): Promise<void> {
    const n = B * (T1 + T2) * C;
    if (a.size !== B * T1 * C || b.size !== B * T2 * C || out.size !== n) throw new Error(`concat-time.fwd: sizes ${a.size}, ${b.size} -> ${out.size} do not match B=${B} T1=${T1} T2=${T2} C=${C}`);
    return this.gpu.dispatch(concatTimeKernel, { tensors: [t(a), t(b), t(out)], params: { B, T1, T2, C }, grid: [Math.ceil(n / WG)] });
  }
  splitTime(dout: BTensor, da: BTensor, db: BTensor, B: number, T1: number, T2: number, C: number, accumulate = false): Promise<void> {
    const n = B * (T1 + T2) * C;
    if (da.size !== B * T1 * C || db.size !== B * T2 * C || dout.size !== n) throw new Error(`concat-time.bwd: sizes do not match B=${B} T1=${T1} T2=${T2} C=${C}`);
    return this.gpu.dispatch(splitTimeKernel, {
      tensors: [t(dout), t(da), t(db)], params: { B, T1, T2, C, accumulate: accumulate ? 1 : 0 }, grid: [Math.ceil(n / WG)],
    });
  }
  gate(s: BTensor, x: BTensor, y: BTensor, out: BTensor): Promise<void> {
    return this.gpu.dispatch(gateForwardKernel, { tensors: [t(s), t(x), t(y), t(out)], params: { n: out.size }, grid: [Math.ceil(out.size / WG)] });
  }
  gateBackward(s: BTensor, x: BTensor, y: BTensor, dout: BTensor, ds: BTensor, dx: BTensor, dy: BTensor): Promise<void> {
    return this.gpu.dispatch(gateBackwardKernel, {
      tensors: [t(s), t(x), t(y), t(dout), t(ds), t(dx), t(dy)], params: { n: dout.size }, grid: [Math.ceil(dout.size / WG)],
    });
  }
  crossEntropy(logits: BTensor, labels: BTensor, weights: BTensor, loss: BTensor, dlogits: BTensor, losses: BTensor): Promise<void> {
    return crossEntropyForwardBackward(this.gpu, t(logits), t(labels), t(weights), t(loss), t(dlogits), t(losses));
  }
  gradNorm(tensors: readonly BTensor[], out: BTensor): Promise<void> {
    return gradNorm(this.gpu, tensors.map(t), t(out));
  }
  adamw(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void> {
    return adamwStep(this.gpu, t(p), t(g), t(m), t(v), {
      lr: o.lr, step: o.step, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay,
      clip: o.clip && { norm: t(o.clip.norm), maxNorm: o.clip.maxNorm },
    });
  }
}
