// CPU reference for the batched matmul, float64, plain loops. Same layouts as shaders/matmul.fwd.wgsl:
// a: [batch, M, K] ([batch, K, M] with transA); b: [batchB, K, N] ([batchB, N, K] with transB), batchB = 1
// with broadcastB; bias: [N]; out, pre: [batch, M, N]. GELU is ref/gelu.ts: `gelu: true` the tanh form, or a GeluForm.

import { type GeluForm, geluForward } from './gelu.ts';

export interface MatmulRefDims {
  batch: number;
  M: number;
  N: number;
  K: number;
}

export interface MatmulRefLayout {
  transA?: boolean;
  transB?: boolean;
  broadcastB?: boolean;
}

export interface MatmulRefForwardOptions extends MatmulRefLayout {
  bias?: ArrayLike<number>;
  /** true = 'tanh'. */
  gelu?: boolean | GeluForm;
}

/** out = gelu?(op(a) @ op(b) + bias); pre = the same before GELU (equal to out without gelu). */
export function matmulForward(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: MatmulRefDims,
  opts: MatmulRefForwardOptions = {},
): { out: Float64Array; pre: Float64Array } {
  const { batch, M, N, K } = dims;
  const pre = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = z * M * K;
    const bo = opts.broadcastB ? 0 : z * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = opts.bias ? opts.bias[n]! : 0;
        for (let k = 0; k < K; k++) {
          const av = opts.transA ? a[ao + k * M + m]! : a[ao + m * K + k]!;
          const bv = opts.transB ? b[bo + n * K + k]! : b[bo + k * N + n]!;
          s += av * bv;
        }
        pre[z * M * N + m * N + n] = s;
      }
    }
  }
  const form = opts.gelu === true ? 'tanh' : opts.gelu;
  return { out: form ? geluForward(pre, form) : Float64Array.from(pre), pre };
}

/**
 * Gradients of pre = op(a) @ op(b) + bias given dc = dLoss/dpre (chain ref.geluBackward(pre, dOut) first
 * when the forward applied GELU). dA in a's layout, dB in b's layout (summed over batch with broadcastB),
 * dBias = column sums of dc over all batch * M rows.
 */
export function matmulBackward(
  dc: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: MatmulRefDims,
  opts: MatmulRefLayout = {},
): { dA: Float64Array; dB: Float64Array; dBias: Float64Array } {
  const { batch, M, N, K } = dims;
  const dA = new Float64Array(batch * M * K);
  const dB = new Float64Array((opts.broadcastB ? 1 : batch) * K * N);
  const dBias = new Float64Array(N);
  for (let z = 0; z < batch; z++) {
    const ao = z * M * K;
    const bo = opts.broadcastB ? 0 : z * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const g = dc[z * M * N + m * N + n]!;
        dBias[n] += g;
        for (let k = 0; k < K; k++) {
          const ai = opts.transA ? ao + k * M + m : ao + m * K + k;
          const bi = opts.transB ? bo + n * K + k : bo + k * N + n;
          dA[ai] += g * b[bi]!;
          dB[bi] += g * a[ai]!;
        }
      }
    }
  }
  return { dA, dB, dBias };
}
