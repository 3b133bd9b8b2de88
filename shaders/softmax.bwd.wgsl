// Softmax backward (through the scale), from the forward's output y:
//   dx[r, j] = scale * y[r, j] * (dy[r, j] - sum_k dy[r, k] * y[r, k])
// y, dy, dx: [R, N] row-major f32. No mask input is needed: masked entries have y = 0, so their dx is
// 0, and a fully masked row (y all zero) gets a zero gradient.
// Same two entry points as softmax.fwd.wgsl, chosen from N and R in the wrapper: `main_row` (one
// invocation per row, no barriers; best on llvmpipe for short rows) and `main_wg` (one workgroup per
// row, tree reduction of the dot product in workgroup memory, WG a power of two; for few long rows).
// 1-D foldable grids.

struct Params {
  R: u32,
  N: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= params.R) { return; }
  let base = r * params.N;
  var d = 0.0;
  for (var j = 0u; j < params.N; j = j + 1u) {
    d = d + dy[base + j] * y[base + j];
  }
  for (var j = 0u; j < params.N; j = j + 1u) {
    dx[base + j] = params.scale * y[base + j] * (dy[base + j] - d);
  }
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x; // uniform across the workgroup
  if (r >= params.R) { return; }
  let base = r * params.N;
  var d = 0.0;
  for (var j = lid; j < params.N; j = j + WG) {
    d = d + dy[base + j] * y[base + j];
  }
  red[lid] = d;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] = red[lid] + red[lid + stride]; }
    workgroupBarrier();
  }
  d = red[0];
  for (var j = lid; j < params.N; j = j + WG) {
    dx[base + j] = params.scale * y[base + j] * (dy[base + j] - d);
  }
}
