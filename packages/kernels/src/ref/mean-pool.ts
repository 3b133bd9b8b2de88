// CPU reference for the masked mean over time, float64. Same formulas as shaders/mean-pool.*.wgsl:
// y[b, c] = sum_t mask[b, t] x[b, t, c] / max(sum_t mask[b, t], 1); a fully masked row gives 0.

export function meanPoolForward(x: ArrayLike<number>, mask: ArrayLike<number>, B: number, T: number, C: number): Float64Array {
  const y = new Float64Array(B * C); // [B, C]
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let t = 0; t < T; t++) count += mask[b * T + t]!;
    const inv = 1 / Math.max(count, 1);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += mask[b * T + t]! * x[(b * T + t) * C + c]!;
      y[b * C + c] = s * inv;
    }
  }
  return y;
}

/** dx[b, t, c] = mask[b, t] * dy[b, c] / max(sum_t mask[b, t], 1). */
export function meanPoolBackward(mask: ArrayLike<number>, dy: ArrayLike<number>, B: number, T: number, C: number): Float64Array {
  const dx = new Float64Array(B * T * C); // [B, T, C]
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let t = 0; t < T; t++) count += mask[b * T + t]!;
    const inv = 1 / Math.max(count, 1);
    for (let t = 0; t < T; t++) {
      const m = mask[b * T + t]!;
      for (let c = 0; c < C; c++) dx[(b * T + t) * C + c] = m * dy[b * C + c]! * inv;
    }
  }
  return dx;
}
