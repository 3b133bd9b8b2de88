// CPU reference for layer norm over the last axis, float64 (llm.c layernorm_forward / _backward).

export interface LayerNormRefForward {
  y: Float64Array; // [R, C]
  mean: Float64Array; // [R]
  rstd: Float64Array; // [R]
}

export interface LayerNormRefBackward {
  dx: Float64Array; // [R, C]
  dgamma: Float64Array; // [C]
  dbeta: Float64Array; // [C]
}

/** x [R, C], gamma [C], beta [C] -> y = (x - mean) * rstd * gamma + beta, with mean and rstd per row. */
export function layerNormForward(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  R: number,
  C: number,
  eps = 1e-5,
): LayerNormRefForward {
  const y = new Float64Array(R * C);
  const mean = new Float64Array(R);
  const rstd = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c]!;
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c]! - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c]! - m) * rs * gamma[c]! + beta[c]!;
    mean[r] = m;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

/** From dy [R, C] and the forward's saved mean / rstd: dx [R, C], dgamma [C], dbeta [C]. */
export function layerNormBackward(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  dy: ArrayLike<number>,
  R: number,
  C: number,
): LayerNormRefBackward {
  const dx = new Float64Array(R * C);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    const m = mean[r]!;
    const rs = rstd[r]!;
    let sumG = 0;
    let sumGx = 0;
    for (let c = 0; c < C; c++) {
      const g = dy[r * C + c]! * gamma[c]!;
      const xhat = (x[r * C + c]! - m) * rs;
      sumG += g;
      sumGx += g * xhat;
      dgamma[c] = dgamma[c]! + dy[r * C + c]! * xhat;
      dbeta[c] = dbeta[c]! + dy[r * C + c]!;
    }
    for (let c = 0; c < C; c++) {
      const xhat = (x[r * C + c]! - m) * rs;
      dx[r * C + c] = rs * (dy[r * C + c]! * gamma[c]! - sumG / C - xhat * (sumGx / C));
    }
  }
  return { dx, dgamma, dbeta };
}
