// CPU reference for the embedding gather, float64. Same formulas as shaders/embedding.*.wgsl:
// out[n, c] = table[ids[n], c]; backward dtable[v, c] = sum over n with ids[n] = v of dout[n, c] (a scatter-add).
// An id outside [0, V) (or not an integer) is an error here; the kernels give a zero row / skip it.

function checkId(id: number, V: number, n: number): number {
  if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`embedding: ids[${n}] = ${id} is not a row of a table of ${V}`);
  return id;
}

/** ids [N], table [V, C] -> out [N, C]. */
export function embeddingForward(ids: ArrayLike<number>, table: ArrayLike<number>, V: number, C: number): Float64Array {
  const N = ids.length;
  const out = new Float64Array(N * C); // [N, C]
  for (let n = 0; n < N; n++) {
    const v = checkId(ids[n]!, V, n);
    for (let c = 0; c < C; c++) out[n * C + c] = table[v * C + c]!;
  }
  return out;
}

/** ids [N], dout [N, C] -> dtable [V, C] (zeros where no id points). */
export function embeddingBackward(ids: ArrayLike<number>, dout: ArrayLike<number>, V: number, C: number): Float64Array {
  const N = ids.length;
  const dtable = new Float64Array(V * C); // [V, C]
  for (let n = 0; n < N; n++) {
    const v = checkId(ids[n]!, V, n);
    for (let c = 0; c < C; c++) dtable[v * C + c] = dtable[v * C + c]! + dout[n * C + c]!;
  }
  return dtable;
}
