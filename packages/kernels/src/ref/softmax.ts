// CPU reference for the masked, scaled softmax over the last axis, float64. Same semantics as
// shaders/softmax.*.wgsl: masked columns and fully masked rows give 0.

export interface SoftmaxRefOptions {
  /** [maskRows, N], 1 keep / 0 pad; row r uses mask row floor(r / rowsPerMaskRow). */
  mask?: ArrayLike<number>;
  rowsPerMaskRow?: number;
  scale?: number;
}

/** y [R, N] = softmax(scale * x) over kept columns of each row of x [R, N]. */
export function softmaxForward(x: ArrayLike<number>, R: number, N: number, opts: SoftmaxRefOptions = {}): Float64Array {
  const scale = opts.scale ?? 1;
  const rpm = opts.rowsPerMaskRow ?? 1;
  const y = new Float64Array(R * N);
  for (let r = 0; r < R; r++) {
    const mrow = Math.floor(r / rpm);
    const kept = (j: number) => opts.mask?.[mrow * N + j] !== 0;
    let m = -Infinity;
    for (let j = 0; j < N; j++) if (kept(j)) m = Math.max(m, scale * x[r * N + j]!);
    let s = 0;
    for (let j = 0; j < N; j++) {
      const e = kept(j) ? Math.exp(scale * x[r * N + j]! - m) : 0;
      y[r * N + j] = e;
      s += e;
    }
    const inv = s > 0 ? 1 / s : 0;
    for (let j = 0; j < N; j++) y[r * N + j] = y[r * N + j]! * inv;
  }
  return y;
}

/** dx [R, N] = scale * y * (dy - sum_k dy * y) per row, from the forward output y. */
export function softmaxBackward(y: ArrayLike<number>, dy: ArrayLike<number>, R: number, N: number, scale = 1): Float64Array {
  const dx = new Float64Array(R * N);
  for (let r = 0; r < R; r++) {
    let d = 0;
    for (let j = 0; j < N; j++) d += dy[r * N + j]! * y[r * N + j]!;
    for (let j = 0; j < N; j++) dx[r * N + j] = scale * y[r * N + j]! * (dy[r * N + j]! - d);
  }
  return dx;
}
