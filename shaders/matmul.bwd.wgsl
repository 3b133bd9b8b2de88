// Matmul backward, bias gradient: dbias[n] = sum_{r < rows} dc[r, n]   (rows = batch * M),
// or dbias[n] += ... when accumulate = 1 (parameter gradients add up over uses).
// dA and dB need no kernel of their own: they are matmuls run through shaders/matmul.fwd.wgsl with other
// transpose flags (see matmulBackward in packages/kernels/src/ops/matmul.ts).
//   dc: [rows, N] contiguous f32 (the gradient of C before any GELU, i.e. of the pre-activation)
//   dbias: [N]
// One invocation per column, summing its rows in order (consecutive invocations read consecutive columns).
// 1-D grid that the runtime may fold into (x, y).

struct Params {
  rows: u32,
  N: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> dc: array<f32>;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let n = (wid.x + wid.y * nwg.x) * WG + lid;
  let N = params.N;
  if (n >= N) { return; }
  // Four partial sums (rows r, r+1, r+2, r+3) shorten the f32 rounding chain and the dependency chain.
  var s = vec4f(0.0);
  var r = 0u;
  for (; r + 4u <= params.rows; r = r + 4u) {
    let i = r * N + n;
    s = s + vec4f(dc[i], dc[i + N], dc[i + 2u * N], dc[i + 3u * N]);
  }
  var d = (s.x + s.y) + (s.z + s.w);
  for (; r < params.rows; r = r + 1u) { d = d + dc[r * N + n]; }
  if (params.accumulate != 0u) { d = d + dbias[n]; }
  dbias[n] = d;
}
