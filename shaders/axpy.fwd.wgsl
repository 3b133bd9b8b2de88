// Glue for the fusion model's backward: y += alpha * x, elementwise over [n] f32 (a gradient reaching one
// activation along two paths). 1-D grid, foldable, one element per invocation.

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  y[i] = y[i] + params.alpha * x[i];
}
