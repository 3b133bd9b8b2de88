// Softmax over the last axis, with an optional key mask and a scale applied first:
//   v[r, j] = scale * x[r, j]                       for kept j (mask row m = floor(r / rows_per_mask_row),
//   y[r, j] = exp(v[r, j] - max_k v[r, k]) / sum_k exp(v[r, k] - max)      kept = mask[m, j] != 0)
//   y[r, j] = 0                                     for masked j; a row with no kept j is all zeros.
// x, y: [R, N] row-major f32 (attention scores [B, H, Tq, Tk] are rows [B*H*Tq, N=Tk]).
// mask: [mask_rows, N] f32, 1 keep / 0 pad, read only when has_mask = 1 (otherwise the wrapper binds x
// in its place); R = mask_rows * rows_per_mask_row, so a [B, Tk] key mask serves rows [B*H*Tq, Tk]
// with rows_per_mask_row = H*Tq.
// Numerics: the max is taken over kept entries only, so logits of +-80 and unmasked -1e30 entries give
// exp(<= 0) and never overflow; a fully masked row has sum 0 and writes zeros instead of 0/0.
//
// Two entry points, chosen by the wrapper from N and R:
//  - `main_row`: one invocation per row, WG rows per workgroup, three plain loops over the row (max;
//    exp and sum, storing exp into y; scale y by 1/sum). No barriers and no workgroup memory: on
//    llvmpipe a workgroup runs as SIMD lanes on one CPU thread and every barrier is a coroutine switch,
//    so for short rows (attention's Tk, a few hundred) independent rows per lane are the fast choice.
//  - `main_wg`: one workgroup per row, WG invocations stride over the columns and combine their
//    partial max and sum with tree reductions in workgroup memory (2 log2(WG) barriers per row).
//    Used for long rows with few of them (by default N > 1024 and R <= 64, see SOFTMAX_ROW_MAX_N in
//    ops/softmax.ts): there a row per lane would leave the whole job to one workgroup (one CPU thread)
//    and the barrier cost is amortised over many columns. WG must be a power of two.
// Both grids are 1-D (flat workgroup index wid.x + wid.y * nwg.x), so the runtime may fold them.

struct Params {
  R: u32,
  N: u32,
  mask_rows: u32,
  rows_per_mask_row: u32,
  has_mask: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

const NEG_BIG: f32 = -3.4028234e38; // -FLT_MAX: below every finite scaled logit

fn kept(mrow: u32, j: u32) -> bool {
  if (params.has_mask == 0u) { return true; }
  return mask[mrow * params.N + j] != 0.0;
}

@compute @workgroup_size(WG)
fn main_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= params.R) { return; }
  let n = params.N;
  let base = r * n;
  let mrow = r / params.rows_per_mask_row;
  var m = NEG_BIG;
  for (var j = 0u; j < n; j = j + 1u) {
    if (kept(mrow, j)) { m = max(m, params.scale * x[base + j]); }
  }
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 1u) {
    var e = 0.0;
    if (kept(mrow, j)) { e = exp(params.scale * x[base + j] - m); }
    y[base + j] = e;
    s = s + e;
  }
  let inv = select(0.0, 1.0 / s, s > 0.0);
  for (var j = 0u; j < n; j = j + 1u) {
    y[base + j] = y[base + j] * inv;
  }
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x; // uniform across the workgroup, so the early return keeps barriers uniform
  if (r >= params.R) { return; }
  let n = params.N;
  let base = r * n;
  let mrow = r / params.rows_per_mask_row;

  var m = NEG_BIG;
  for (var j = lid; j < n; j = j + WG) {
    if (kept(mrow, j)) { m = max(m, params.scale * x[base + j]); }
  }
  red[lid] = m;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] = max(red[lid], red[lid + stride]); }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier(); // everyone has read red[0] before it is reused

  var s = 0.0;
  for (var j = lid; j < n; j = j + WG) {
    var e = 0.0;
    if (kept(mrow, j)) { e = exp(params.scale * x[base + j] - m); }
    y[base + j] = e;
    s = s + e;
  }
  red[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] = red[lid] + red[lid + stride]; }
    workgroupBarrier();
  }
  s = red[0];
  let inv = select(0.0, 1.0 / s, s > 0.0);
  // Each invocation rescales only the columns it wrote itself: no barrier needed on y.
  for (var j = lid; j < n; j = j + WG) {
    y[base + j] = y[base + j] * inv;
  }
}
