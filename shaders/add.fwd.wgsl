// Residual add: out = a + alpha * b, elementwise over [n] contiguous f32.
// Its backward needs no kernel (da = dout, db = alpha * dout). `out` must not alias `a` or `b`:
// WebGPU forbids one buffer bound both read-only and writable in a dispatch.
// 1-D grid, foldable. Each invocation handles one vec4 (4 elements); a tail of n % 4 is handled scalar.

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let q = (wid.x + wid.y * nwg.x) * WG + lid; // index of a group of 4 elements
  let base = q * 4u;
  if (base >= params.n) { return; }
  let end = min(base + 4u, params.n);
  for (var i = base; i < end; i = i + 1u) {
    out[i] = a[i] + params.alpha * b[i];
  }
}
