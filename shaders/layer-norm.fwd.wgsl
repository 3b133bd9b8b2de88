// Layer norm over the last axis (llm.c layernorm_forward), saving what the backward needs:
//   mean[r] = (1/C) sum_c x[r, c]
//   rstd[r] = 1 / sqrt((1/C) sum_c (x[r, c] - mean[r])^2 + eps)      (two passes: no cancellation)
//   y[r, c] = (x[r, c] - mean[r]) * rstd[r] * gamma[c] + beta[c]
// x, y: [R, C] row-major f32; gamma, beta: [C]; mean, rstd: [R]. C = 1 is defined: y = beta.
// One invocation per row, WG rows per workgroup, three plain loops over the row. No barriers and no
// workgroup memory: on llvmpipe a workgroup runs as SIMD lanes on one CPU thread and barriers are
// coroutine switches, so independent rows per lane beat a cooperative per-row reduction for the
// model's widths (C of a few hundred to 768) and row counts (B*T, hundreds to thousands).
// 1-D grid of ceil(R / WG) workgroups; the flat index wid.x + wid.y * nwg.x lets the runtime fold it.

struct Params {
  R: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= params.R) { return; }
  let c_count = params.C;
  let base = r * c_count;
  let inv_c = 1.0 / f32(c_count);
  var s = 0.0;
  for (var c = 0u; c < c_count; c = c + 1u) { s = s + x[base + c]; }
  let m = s * inv_c;
  var v = 0.0;
  for (var c = 0u; c < c_count; c = c + 1u) {
    let d = x[base + c] - m;
    v = v + d * d;
  }
  let rs = inverseSqrt(v * inv_c + params.eps);
  for (var c = 0u; c < c_count; c = c + 1u) {
    y[base + c] = (x[base + c] - m) * rs * gamma[c] + beta[c];
  }
  mean[r] = m;
  rstd[r] = rs;
}
