// CPU reference for weighted cross-entropy with ignore label -1 and label smoothing eps, float64; PyTorch's
// F.cross_entropy(z, y, weight=w, reduction='mean', ignore_index=-1, label_smoothing=eps) for eps = 0, except
// that every row ignored gives loss 0 and gradient 0 (PyTorch: NaN). With eps > 0 the target of row b is
// q_b = (1 - eps) onehot(y_b) + eps / K_cls and the row's weight stays w[y_b] (PyTorch weights the smoothing term
// per class instead; the two agree for equal weights). Same formulas as shaders/cross-entropy.fwd.wgsl.

export interface CrossEntropyResult {
  /** sum_b w[y_b] nll_b / sum_b w[y_b] over rows not ignored. */
  loss: number;
  /** [B] unweighted nll_b = logsumexp(z_b) - sum_k q_bk z_bk (eps = 0: - z_b[y_b]), 0 for ignored rows. */
  losses: Float64Array;
  /** sum_b w[y_b] over rows not ignored. */
  weightSum: number;
}

/** Throws unless every label is -1 or an integer in [0, K_cls). */
export function crossEntropyCheckLabels(labels: ArrayLike<number>, K_cls: number): void {
  for (let b = 0; b < labels.length; b++) {
    const y = labels[b]!;
    if (y !== -1 && !(Number.isInteger(y) && y >= 0 && y < K_cls)) {
      throw new RangeError(`cross-entropy: labels[${b}] = ${y} is not -1 (ignore) or an integer class id in [0, ${K_cls})`);
    }
  }
}

/** The smoothed target weight of class k for label y: (1 - eps) [k == y] + eps / K_cls. */
const target = (k: number, y: number, eps: number, K_cls: number) => (k === y ? 1 - eps : 0) + eps / K_cls;

export function crossEntropyForward(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  weights: ArrayLike<number>,
  B: number,
  K_cls: number,
  eps = 0,
): CrossEntropyResult {
  crossEntropyCheckLabels(labels, K_cls);
  const losses = new Float64Array(B);
  let weightSum = 0;
  let acc = 0;
  for (let b = 0; b < B; b++) {
    const y = labels[b]!;
    if (y === -1) continue;
    let m = -Infinity;
    for (let k = 0; k < K_cls; k++) m = Math.max(m, logits[b * K_cls + k]!);
    let s = 0;
    for (let k = 0; k < K_cls; k++) s += Math.exp(logits[b * K_cls + k]! - m);
    let zq = 0; // sum_k q_k z_k
    for (let k = 0; k < K_cls; k++) zq += target(k, y, eps, K_cls) * logits[b * K_cls + k]!;
    losses[b] = m + Math.log(s) - zq;
    weightSum += weights[y]!;
    acc += weights[y]! * losses[b]!;
  }
  return { loss: weightSum !== 0 ? acc / weightSum : 0, losses, weightSum };
}

/** dlogits [B, K_cls] of the scalar loss: w[y_b] (softmax(z_b) - q_b) / sum_b w[y_b]; 0 for ignored rows. */
export function crossEntropyBackward(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  weights: ArrayLike<number>,
  B: number,
  K_cls: number,
  eps = 0,
): Float64Array {
  crossEntropyCheckLabels(labels, K_cls);
  let weightSum = 0;
  for (let b = 0; b < B; b++) if (labels[b] !== -1) weightSum += weights[labels[b]!]!;
  const d = new Float64Array(B * K_cls);
  if (weightSum === 0) return d;
  for (let b = 0; b < B; b++) {
    const y = labels[b]!;
    if (y === -1) continue;
    let m = -Infinity;
    for (let k = 0; k < K_cls; k++) m = Math.max(m, logits[b * K_cls + k]!);
    let s = 0;
    for (let k = 0; k < K_cls; k++) s += Math.exp(logits[b * K_cls + k]! - m);
    const coef = weights[y]! / weightSum;
    for (let k = 0; k < K_cls; k++) {
      d[b * K_cls + k] = coef * (Math.exp(logits[b * K_cls + k]! - m) / s - target(k, y, eps, K_cls));
    }
  }
  return d;
}
