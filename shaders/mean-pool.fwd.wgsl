// Masked mean over time: y[b, c] = sum_t mask[b, t] * x[b, t, c] / max(sum_t mask[b, t], 1).
// x: [B, T, C], mask: [B, T] (f32, 1 keep / 0 pad), y: [B, C], all row-major contiguous f32.
// A fully masked row (sum_t mask = 0) gives y[b, :] = 0 (its numerator is 0 and the divisor 1).
// One invocation per output element (b, c): it loops over t, reading x[b, t, c] (neighbouring invocations
// read neighbouring c) and mask[b, t]. No barriers, no workgroup memory. 1-D grid, foldable.

struct Params {
  B: u32,
  T: u32,
  C: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid; // flat index b * C + c
  if (i >= params.B * params.C) { return; }
  let b = i / params.C;
  let c = i - b * params.C;
  var sum = 0.0;
  var count = 0.0;
  for (var t = 0u; t < params.T; t = t + 1u) {
    let m = mask[b * params.T + t];
    count = count + m;
    if (m != 0.0) { sum = sum + m * x[(b * params.T + t) * params.C + c]; }
  }
  y[i] = sum / max(count, 1.0);
}
