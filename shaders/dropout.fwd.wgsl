// Dropout forward with a stateless counter-based generator (no mask buffer is stored):
//   h(i)   = pcg(pcg(seed) ^ pcg(offset + i))            (u32 arithmetic, wrapping; PCG-RXS-M-XS hash)
//   keep_i = h(i) >= threshold,  threshold = min(round(p * 2^32), 2^32 - 1)   (computed on the CPU)
//   y[i]   = keep_i ? x[i] * scale : 0,  scale = 1 / (1 - p)                (computed on the CPU)
// The backward (dropout.bwd.wgsl) regenerates the same mask from (seed, offset); so does the CPU reference
// (ref/dropout.ts, with Math.imul and >>> 0), bit for bit. p = 0 gives threshold 0: every element is kept
// and scale = 1 (identity). `offset` lets several tensors, or several calls, draw disjoint counter ranges.
// x, y: [n] contiguous f32. One invocation per element; 1-D grid that the runtime may fold into (x, y).

struct Params {
  n: u32,
  seed: u32,
  offset: u32,
  threshold: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

// PCG hash (Jarzynski & Olano 2020, "Hash Functions for GPU Rendering"): a bijection on u32.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn keep(i: u32) -> bool {
  return pcg(pcg(params.seed) ^ pcg(params.offset + i)) >= params.threshold;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  var v = 0.0;
  if (keep(i)) { v = x[i] * params.scale; }
  y[i] = v;
}
