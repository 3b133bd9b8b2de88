// Backward of gate.fwd.wgsl: ds = dout * (x - y) * g * (1 - g), dx = dout * g, dy = dout * (1 - g),
// g = sigmoid(s); all overwritten. 1-D grid over [n], foldable.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> ds: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dy: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let g = 1.0 / (1.0 + exp(-s[i]));
  let d = dout[i];
  ds[i] = d * (x[i] - y[i]) * g * (1.0 - g);
  dx[i] = d * g;
  dy[i] = d * (1.0 - g);
}
