// Glue for the 'gate' fusion variant: out = g * x + (1 - g) * y with g = sigmoid(s), elementwise over [n].
// 1-D grid, foldable.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let g = 1.0 / (1.0 + exp(-s[i]));
  out[i] = g * x[i] + (1.0 - g) * y[i];
}
