// Layer norm backward (llm.c layernorm_backward), from the forward's saved mean and rstd:
//   xhat[r, c] = (x[r, c] - mean[r]) * rstd[r],   g[r, c] = dy[r, c] * gamma[c]
//   dx[r, c]   = rstd[r] * (g[r, c] - mean_c g[r, :] - xhat[r, c] * mean_c (g[r, :] * xhat[r, :]))
//   dgamma[c] (+)= sum_r dy[r, c] * xhat[r, c]        dbeta[c] (+)= sum_r dy[r, c]
// x, dy, dx: [R, C] row-major f32; gamma, dgamma, dbeta: [C]; mean, rstd: [R].
// `accumulate` = 1 adds into dgamma and dbeta (parameter gradients add up across uses); dx is always
// overwritten.
// Two entry points sharing these bindings, dispatched one after the other by the wrapper:
//  - `main` (layer-norm.bwd): dx, one invocation per row, WG rows per workgroup, two loops over the
//    row; no barriers (llvmpipe: barriers are coroutine switches, independent rows per lane are fast).
//  - `dgamma_dbeta` (layer-norm.bwd.dgamma): the reduction over rows without atomics: one invocation
//    per column c sums its column over all R rows in one sequential loop (adjacent lanes read adjacent
//    columns, so the loads are contiguous across the SIMD lanes). 1-D grid of ceil(C / WG).
// Both grids are 1-D (flat index wid.x + wid.y * nwg.x), so the runtime may fold them.

struct Params {
  R: u32,
  C: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= params.R) { return; }
  let c_count = params.C;
  let base = r * c_count;
  let m = mean[r];
  let rs = rstd[r];
  var sum_g = 0.0;
  var sum_gx = 0.0;
  for (var c = 0u; c < c_count; c = c + 1u) {
    let g = dy[base + c] * gamma[c];
    sum_g = sum_g + g;
    sum_gx = sum_gx + g * (x[base + c] - m) * rs;
  }
  let inv_c = 1.0 / f32(c_count);
  let mean_g = sum_g * inv_c;
  let mean_gx = sum_gx * inv_c;
  for (var c = 0u; c < c_count; c = c + 1u) {
    let xhat = (x[base + c] - m) * rs;
    dx[base + c] = rs * (dy[base + c] * gamma[c] - mean_g - xhat * mean_gx);
  }
}

@compute @workgroup_size(WG)
fn dgamma_dbeta(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let c = (wid.x + wid.y * nwg.x) * WG + lid;
  let c_count = params.C;
  if (c >= c_count) { return; }
  var dg = 0.0;
  var db = 0.0;
  for (var r = 0u; r < params.R; r = r + 1u) {
    let d = dy[r * c_count + c];
    dg = dg + d * (x[r * c_count + c] - mean[r]) * rstd[r];
    db = db + d;
  }
  if (params.accumulate != 0u) {
    dg = dg + dgamma[c];
    db = db + dbeta[c];
  }
  dgamma[c] = dg;
  dbeta[c] = db;
}
