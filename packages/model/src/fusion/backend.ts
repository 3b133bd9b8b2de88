// The small set of tensor ops the fusion model is written against, implemented twice: `wgsl` (our WebGPU
// kernels; every tensor stays on the device during a step, only `read` brings data back) and `cpu` (the float64
// references in @emofuse/kernels `ref`, storing float32 or float64 arrays). The model never touches data directly.
//
// Conventions (those of the kernel wrappers): contiguous row-major; every output is overwritten unless an
// `accumulate` flag says add into it; an output may not alias an input.
//
// GELU has two forms (GeluForm, @emofuse/kernels ref/gelu.ts): 'tanh' (the fusion model's, and what `gelu: true`
// means) and 'erf', the exact 0.5 x (1 + erf(x / sqrt 2)) of BERT (the text encoder's). The matmul's GELU epilogue
// and geluBackward take the form; a model passes the same form to both.

import type { GeluForm } from '@emofuse/kernels';

export type { GeluForm };

export interface BTensor {
  readonly shape: readonly number[];
  readonly size: number;
}

export interface MatmulDims {
  batch: number;
  M: number;
  N: number;
  K: number;
}

export interface MatmulOpts {
  transA?: boolean;
  transB?: boolean;
  broadcastB?: boolean;
  bias?: BTensor;
  /** GELU after the bias: true or 'tanh' the tanh form, 'erf' the exact form. */
  gelu?: boolean | GeluForm;
  /** Receives the pre-activation when gelu. */
  pre?: BTensor;
  accumulate?: boolean;
}

export interface MatmulBackwardOpts {
  transA?: boolean;
  transB?: boolean;
  broadcastB?: boolean;
  /** Add into dB / dBias. */
  accumulate?: boolean;
  /** Add into dA. */
  accumulateA?: boolean;
}

export interface DropoutOpts {
  p: number;
  seed: number;
  offset?: number;
}

export interface AdamwOpts {
  lr: number;
  step: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip by a global norm that is already a [1] tensor (gradNorm's output). */
  clip?: { norm: BTensor; maxNorm: number };
}

export type BackendName = 'wgsl' | 'cpu' | 'ort';

export interface Backend {
  readonly name: BackendName;
  /** Words for logs: the adapter, or 'cpu float64'. */
  readonly description: string;

  // -- memory (outside a step, or input uploads at its start)
  zeros(shape: readonly number[], label?: string): BTensor;
  upload(data: ArrayLike<number>, shape: readonly number[], label?: string): BTensor;
  /**
   * The first prod(shape) elements of t's storage as a tensor of `shape`: no copy, reads and writes go to t. The
   * model runs a batch shorter than its longest on views of its longest activations.
   */
  view(t: BTensor, shape: readonly number[]): BTensor;
  write(t: BTensor, data: ArrayLike<number>): void;
  read(t: BTensor): Promise<Float32Array | Float64Array>;
  /** Everything queued has been submitted (wgsl) or run (ort); inputs written after this see the previous step finished. */
  flush(): Promise<void>;
  /**
   * Optional: tensors whose values need not outlive a step (activations and their gradients). A backend that runs a
   * step as one graph (ort) leaves them inside it; reading one after its step has run is then an error.
   */
  scratch?(tensors: readonly BTensor[]): void;
  destroy(): Promise<void>;

  // -- ops (forward / backward pairs, as the kernel wrappers)
  matmul(a: BTensor, b: BTensor, c: BTensor, dims: MatmulDims, opts?: MatmulOpts): Promise<void>;
  matmulBackward(
    t: { dc: BTensor; a: BTensor; b: BTensor; dA?: BTensor; dB?: BTensor; dBias?: BTensor },
    dims: MatmulDims,
    opts?: MatmulBackwardOpts,
  ): Promise<void>;
  /** dx (+)= dy * gelu'(x) of the given form (default 'tanh'); x is the matmul's saved pre-activation. */
  geluBackward(x: BTensor, dy: BTensor, dx: BTensor, accumulate?: boolean, form?: GeluForm): Promise<void>;
  attention(q: BTensor, k: BTensor, v: BTensor, mask: BTensor | null, out: BTensor, lse: BTensor, heads: number): Promise<void>;
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
  ): Promise<void>;
  /** eps: added to the variance (default 1e-5; BERT's checkpoints say 1e-12). */
  layerNorm(x: BTensor, gamma: BTensor, beta: BTensor, y: BTensor, mean: BTensor, rstd: BTensor, eps?: number): Promise<void>;
  layerNormBackward(
    x: BTensor,
    gamma: BTensor,
    mean: BTensor,
    rstd: BTensor,
    dy: BTensor,
    dx: BTensor,
    dgamma: BTensor,
    dbeta: BTensor,
  ): Promise<void>;
  /** out = a + alpha * b. */
  add(a: BTensor, b: BTensor, out: BTensor, alpha?: number): Promise<void>;
  /** y += alpha * x (glue). */
  axpy(x: BTensor, y: BTensor, alpha?: number): Promise<void>;
  dropout(x: BTensor, y: BTensor, o: DropoutOpts): Promise<void>;
  dropoutBackward(dy: BTensor, dx: BTensor, o: DropoutOpts): Promise<void>;
  meanPool(x: BTensor, mask: BTensor, y: BTensor): Promise<void>;
  meanPoolBackward(mask: BTensor, dy: BTensor, dx: BTensor, accumulate?: boolean): Promise<void>;
  /** out [B, T1+T2, C] = a [B, T1, C] then b [B, T2, C] along time (glue). */
  concatTime(a: BTensor, b: BTensor, out: BTensor, B: number, T1: number, T2: number, C: number): Promise<void>;
  /** da (+)= dout[:, :T1], db (+)= dout[:, T1:] (glue). */
  splitTime(dout: BTensor, da: BTensor, db: BTensor, B: number, T1: number, T2: number, C: number, accumulate?: boolean): Promise<void>;
  /** y [R, N] = softmax(x) over the last axis (the audio stem's layer mix: softmax of audio.layerMix). */
  softmax(x: BTensor, y: BTensor): Promise<void>;
  /** dx = y * (dy - sum(dy * y)) per row, from the forward's output y. */
  softmaxBackward(y: BTensor, dy: BTensor, dx: BTensor): Promise<void>;
  /** out = sigmoid(s) * x + (1 - sigmoid(s)) * y, elementwise (glue). */
  gate(s: BTensor, x: BTensor, y: BTensor, out: BTensor): Promise<void>;
  gateBackward(s: BTensor, x: BTensor, y: BTensor, dout: BTensor, ds: BTensor, dx: BTensor, dy: BTensor): Promise<void>;
  /** Weighted-mean cross-entropy: loss [1], dlogits [B, K_cls], losses [B]; labels [B] hold class ids or -1 (ignore). */
  /** Weighted mean cross-entropy and its gradient; `smoothing`: label smoothing eps in [0, 1) (default 0). */
  crossEntropy(
    logits: BTensor,
    labels: BTensor,
    weights: BTensor,
    loss: BTensor,
    dlogits: BTensor,
    losses: BTensor,
    smoothing?: number,
  ): Promise<void>;
  /** out [N, C] = table [V, C] rows at ids [N] (float token ids; the text encoder's embeddings). */
  embedding(ids: BTensor, table: BTensor, out: BTensor): Promise<void>;
  /** dtable [V, C] (+)= scatter-add of dout [N, C] rows at ids [N] (overwritten: zeros where no id points). */
  embeddingBackward(ids: BTensor, dout: BTensor, dtable: BTensor, accumulate?: boolean): Promise<void>;
  gradNorm(tensors: readonly BTensor[], out: BTensor): Promise<void>;
  adamw(p: BTensor, g: BTensor, m: BTensor, v: BTensor, o: AdamwOpts): Promise<void>;
}
