// Fused multi-head cross-attention, backward pre-pass: Drow[b, h, i] = sum_d dout[b, i, h*D + d] * out[b, i, h*D + d],
// the row sums of dout * out per head that cross-attention.bwd.wgsl needs (dS = P (dP - Drow)).
// Its own file because the dq / dkdv kernels already bind the 10 storage buffers a stage may have.
//
// Layouts (row-major contiguous f32; C = H*D, D % 4 == 0, head h owns channels h*D .. h*D+D-1):
//   out, dout [B, Tq, C]   (read as vec4)
//   drow      [B, H, Tq]   (or any buffer with at least B*H*Tq elements: a cached scratch)
// One invocation per (b, h, i), row = (b*H + h)*Tq + i; 1-D grid, foldable. A fully masked row has
// out = 0, hence Drow = 0.

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  D: u32,
}

@group(0) @binding(0) var<storage, read> out: array<vec4f>;
@group(0) @binding(1) var<storage, read> dout: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> drow: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  let Tq = params.Tq;
  let H = params.H;
  if (row >= params.B * H * Tq) { return; }
  let i = row % Tq;
  let bh = row / Tq;
  let h = bh % H;
  let b = bh / H;
  let D4 = params.D / 4u;
  let at = (b * Tq + i) * H * D4 + h * D4;
  var acc = vec4f(0.0);
  for (var d = 0u; d < D4; d++) { acc += dout[at + d] * out[at + d]; }
  drow[row] = acc.x + acc.y + acc.z + acc.w;
}
