// Masked mean over time, backward: dx[b, t, c] = mask[b, t] * dy[b, c] / max(sum_t mask[b, t], 1).
// mask: [B, T] (f32, 1 keep / 0 pad), dy: [B, C], dx: [B, T, C], all row-major contiguous f32.
// A fully masked row gets dx[b, :, :] = 0; padded positions get 0. `accumulate` = 1 adds into dx.
// One invocation per (b, c): it sums the mask row once, then walks t writing dx[b, t, c] (neighbouring
// invocations write neighbouring c). No barriers, no workgroup memory. 1-D grid, foldable.

struct Params {
  B: u32,
  T: u32,
  C: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> mask: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid; // flat index b * C + c
  if (i >= params.B * params.C) { return; }
  let b = i / params.C;
  let c = i - b * params.C;
  var count = 0.0;
  for (var t = 0u; t < params.T; t = t + 1u) {
    count = count + mask[b * params.T + t];
  }
  let g = dy[i] / max(count, 1.0);
  for (var t = 0u; t < params.T; t = t + 1u) {
    let at = (b * params.T + t) * params.C + c;
    var d = mask[b * params.T + t] * g;
    if (params.accumulate != 0u) { d = d + dx[at]; }
    dx[at] = d;
  }
}
