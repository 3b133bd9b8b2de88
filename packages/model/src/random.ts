// The one Gaussian sampler of the model package (initial weights, generated data), over the kernels package's
// mulberry32: Box-Muller on uniforms shifted by half a step (u in (0, 1), so log(u) is finite).

/** A N(0, 1) stream drawing two values of the uniform [0, 1) stream `uniform` per sample. */
export function gaussian(uniform: () => number): () => number {
  const u = () => uniform() + 2 ** -33;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}
