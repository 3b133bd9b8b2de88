// CPU reference for one AdamW step, float64, PyTorch's torch.optim.AdamW formula (see shaders/adamw.fwd.wgsl):
// decoupled weight decay p *= 1 - lr*wd, then the bias-corrected Adam step. The gradient is first multiplied by
// gradScale and, when maxNorm is given, by clip_grad_norm_'s coefficient min(1, maxNorm / (gradNorm + 1e-6)).

export interface AdamwRefOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for the bias corrections 1 - beta^step. */
  step: number;
  gradScale?: number;
  /** Clip: scale gradients by min(1, maxNorm / (gradNorm + 1e-6)). */
  maxNorm?: number;
  gradNorm?: number;
}

/** clip_grad_norm_'s coefficient times gradScale. */
export function adamwGradScale(o: Pick<AdamwRefOptions, 'gradScale' | 'maxNorm' | 'gradNorm'>): number {
  let s = o.gradScale ?? 1;
  if (o.maxNorm !== undefined && o.maxNorm > 0) s *= Math.min(1, o.maxNorm / ((o.gradNorm ?? 0) + 1e-6));
  return s;
}

/** Returns the updated parameters and moments (new arrays; the inputs are not modified). */
export function adamwStep(
  p: ArrayLike<number>,
  g: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AdamwRefOptions,
): { p: Float64Array; m: Float64Array; v: Float64Array } {
  const n = p.length;
  const s = adamwGradScale(o);
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const out = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * s;
    const mi = o.beta1 * m[i]! + (1 - o.beta1) * gi;
    const vi = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
    const pi = p[i]! * (1 - o.lr * o.weightDecay);
    out.p[i] = pi - ((o.lr / bc1) * mi) / (Math.sqrt(vi) / Math.sqrt(bc2) + o.eps);
    out.m[i] = mi;
    out.v[i] = vi;
  }
  return out;
}
