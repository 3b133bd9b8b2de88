// CPU reference for concatenation along time: out [B, T1+T2, C] = [a [B, T1, C] ; b [B, T2, C]] per batch
// entry; the backward splits dout back into da and db (copies, float64).

export interface ConcatTimeDims {
  B: number;
  T1: number;
  T2: number;
  C: number;
}

export function concatTimeForward(a: ArrayLike<number>, b: ArrayLike<number>, { B, T1, T2, C }: ConcatTimeDims): Float64Array {
  const out = new Float64Array(B * (T1 + T2) * C);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < T1 * C; j++) out[i * (T1 + T2) * C + j] = a[i * T1 * C + j]!;
    for (let j = 0; j < T2 * C; j++) out[(i * (T1 + T2) + T1) * C + j] = b[i * T2 * C + j]!;
  }
  return out;
}

export function concatTimeBackward(dout: ArrayLike<number>, { B, T1, T2, C }: ConcatTimeDims): { da: Float64Array; db: Float64Array } {
  const da = new Float64Array(B * T1 * C);
  const db = new Float64Array(B * T2 * C);
  const T = T1 + T2;
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < T1 * C; j++) da[i * T1 * C + j] = dout[i * T * C + j]!;
    for (let j = 0; j < T2 * C; j++) db[i * T2 * C + j] = dout[(i * T + T1) * C + j]!;
  }
  return { da, db };
}
