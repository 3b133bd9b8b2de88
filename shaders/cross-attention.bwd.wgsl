// Fused multi-head cross-attention, backward (FlashAttention-2 style: P recomputed from the saved lse).
// Two entry points sharing this file's bindings, no atomics:
//   main_dq   ('cross-attention.bwd.dq')   one invocation per (b, h, query i), loops over keys j:
//             dq_i = scale * sum_j dS_ij k_j
//   main_dkdv ('cross-attention.bwd.dkdv') one invocation per (b, h, key j), loops over queries i:
//             dv_j = sum_i P_ij dout_i,  dk_j = scale * sum_i dS_ij q_i
// with, per head, s_ij = scale * q_i.k_j, P_ij = exp(s_ij - lse_i), dP_ij = dout_i.v_j,
// dS_ij = P_ij (dP_ij - Drow_i), Drow_i = dout_i.out_i (computed by the pre-pass in
// cross-attention.bwd-drow.wgsl, since this file already binds the 10 storage buffers a stage may have).
//
// Layouts (row-major contiguous f32; C = H*D; head h owns channels h*D .. h*D+D-1):
//   q, dout, dq      [B, Tq, C]   (read as vec4: D % 4 == 0)
//   k, v, dk, dv     [B, Tk, C]
//   mask             [B, Tk]      1 keep / 0 pad (nonzero keeps); ignored when has_mask == 0
//   lse, drow        [B, H, Tq]   lse from the forward; lse < -1e29 marks a fully masked row (sentinel -1e30)
// Padded keys get dk = dv = 0; fully masked query rows get dq = 0 and contribute nothing to dk, dv.
// Each kernel binds all ten buffers (one binding list per file) and writes only its own outputs.
// accumulate = 1 adds into dq / dk / dv instead of overwriting them.
// Each invocation keeps its D-vectors in registers (arrays of vec4, D <= 128) and streams the other side's
// rows in blocks of 4 (4 dot products per loaded vec4 of its own); WG rows per workgroup.

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  Tk: u32,
  D: u32,
  has_mask: u32,
  scale: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<vec4f>;
@group(0) @binding(6) var<storage, read> drow: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> dv: array<vec4f>;
@group(0) @binding(10) var<uniform> params: Params;

override WG: u32 = 64;
// Head size D/4 fixed at pipeline creation (0: read params.D at run time, version 1 of these kernels).
// Fixed, every loop over d has a constant trip count: the compiler unrolls it and keeps the per-row arrays
// in registers instead of indexing them dynamically (on llvmpipe: per-lane scratch memory). The wrapper
// sets it from the tensors' D, so a pipeline exists per head size (one or two per model), never per B/Tq/Tk.
override D4_FIXED: u32 = 0u;
// 1: grid (ceil(rows / WG), B*H), one (b, h) per workgroup, so the streamed side's addresses are uniform
// across the workgroup (version 3); 0: flat 1-D grid over B*H*rows.
override GRID_BH: u32 = 0u;

const MAX_D4: u32 = 32u;               // D <= 128
const MASKED_LSE_BELOW: f32 = -1.0e29; // the forward writes -1e30 for a fully masked row

fn key_kept(b: u32, j: u32) -> bool {
  return params.has_mask == 0u || mask[b * params.Tk + j] != 0.0;
}

@compute @workgroup_size(WG)
fn main_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  var row: u32; // (b*H + h)*Tq + i: also the lse / drow index
  var i: u32;
  var bh: u32;
  if (GRID_BH != 0u) {
    i = wid.x * WG + lid;
    bh = wid.y;
    if (i >= Tq || bh >= params.B * H) { return; }
    row = bh * Tq + i;
  } else {
    row = (wid.x + wid.y * nwg.x) * WG + lid;
    if (row >= params.B * H * Tq) { return; }
    i = row % Tq;
    bh = row / Tq;
  }
  let h = bh % H;
  let b = bh / H;
  let D4 = select(params.D / 4u, D4_FIXED, D4_FIXED != 0u);
  let C4 = H * D4;
  let q_at = (b * Tq + i) * C4 + h * D4;
  let scale = params.scale;

  var acc: array<vec4f, MAX_D4>; // sum_j dS_ij k_j
  for (var d = 0u; d < D4; d++) { acc[d] = vec4f(0.0); }
  let lse_i = lse[row];
  if (lse_i >= MASKED_LSE_BELOW) {
    var qs: array<vec4f, MAX_D4>; // q_i * scale
    var go: array<vec4f, MAX_D4>; // dout_i
    for (var d = 0u; d < D4; d++) {
      qs[d] = q[q_at + d] * scale;
      go[d] = dout[q_at + d];
    }
    let drow_i = drow[row];
    // Keys in blocks of 4 (as the forward); those past Tk or padded are dropped (rows clamped in bounds).
    for (var j0 = 0u; j0 < Tk; j0 += 4u) {
      var keep = vec4<bool>(false);
      for (var u = 0u; u < 4u; u++) {
        if (j0 + u < Tk) { keep[u] = key_kept(b, j0 + u); }
      }
      if (!any(keep)) { continue; }
      let kv0 = (b * Tk + j0) * C4 + h * D4;
      let kv1 = (b * Tk + min(j0 + 1u, Tk - 1u)) * C4 + h * D4;
      let kv2 = (b * Tk + min(j0 + 2u, Tk - 1u)) * C4 + h * D4;
      let kv3 = (b * Tk + min(j0 + 3u, Tk - 1u)) * C4 + h * D4;
      var s = vec4f(0.0);  // scale * q_i.k_j
      var dp = vec4f(0.0); // dout_i.v_j
      for (var d = 0u; d < D4; d++) {
        let x = qs[d];
        let g = go[d];
        s += vec4f(dot(x, k[kv0 + d]), dot(x, k[kv1 + d]), dot(x, k[kv2 + d]), dot(x, k[kv3 + d]));
        dp += vec4f(dot(g, v[kv0 + d]), dot(g, v[kv1 + d]), dot(g, v[kv2 + d]), dot(g, v[kv3 + d]));
      }
      let ds = select(vec4f(0.0), exp(s - lse_i) * (dp - drow_i), keep);
      for (var d = 0u; d < D4; d++) {
        acc[d] += ds.x * k[kv0 + d] + ds.y * k[kv1 + d] + ds.z * k[kv2 + d] + ds.w * k[kv3 + d];
      }
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var d = 0u; d < D4; d++) {
    var g = acc[d] * scale;
    if (acc_old) { g += dq[q_at + d]; }
    dq[q_at + d] = g;
  }
}

@compute @workgroup_size(WG)
fn main_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  var row: u32; // (b*H + h)*Tk + j
  var j: u32;
  var bh: u32;
  if (GRID_BH != 0u) {
    j = wid.x * WG + lid;
    bh = wid.y;
    if (j >= Tk || bh >= params.B * H) { return; }
    row = bh * Tk + j;
  } else {
    row = (wid.x + wid.y * nwg.x) * WG + lid;
    if (row >= params.B * H * Tk) { return; }
    j = row % Tk;
    bh = row / Tk;
  }
  let h = bh % H;
  let b = bh / H;
  let D4 = select(params.D / 4u, D4_FIXED, D4_FIXED != 0u);
  let C4 = H * D4;
  let kv_at = (b * Tk + j) * C4 + h * D4;
  let scale = params.scale;

  var gk: array<vec4f, MAX_D4>; // sum_i dS_ij q_i
  var gv: array<vec4f, MAX_D4>; // sum_i P_ij dout_i
  for (var d = 0u; d < D4; d++) {
    gk[d] = vec4f(0.0);
    gv[d] = vec4f(0.0);
  }
  if (key_kept(b, j)) {
    var ks: array<vec4f, MAX_D4>; // k_j * scale
    var vr: array<vec4f, MAX_D4>; // v_j
    for (var d = 0u; d < D4; d++) {
      ks[d] = k[kv_at + d] * scale;
      vr[d] = v[kv_at + d];
    }
    let stat0 = bh * Tq; // lse / drow of (b, h, query 0)
    // Queries in blocks of 4; those past Tq or fully masked (lse sentinel) are dropped.
    for (var i0 = 0u; i0 < Tq; i0 += 4u) {
      var live = vec4<bool>(false);
      var lse4 = vec4f(0.0);
      var drow4 = vec4f(0.0);
      for (var u = 0u; u < 4u; u++) {
        if (i0 + u < Tq) {
          lse4[u] = lse[stat0 + i0 + u];
          drow4[u] = drow[stat0 + i0 + u];
          live[u] = lse4[u] >= MASKED_LSE_BELOW;
        }
      }
      if (!any(live)) { continue; }
      let qa0 = (b * Tq + i0) * C4 + h * D4;
      let qa1 = (b * Tq + min(i0 + 1u, Tq - 1u)) * C4 + h * D4;
      let qa2 = (b * Tq + min(i0 + 2u, Tq - 1u)) * C4 + h * D4;
      let qa3 = (b * Tq + min(i0 + 3u, Tq - 1u)) * C4 + h * D4;
      var s = vec4f(0.0);  // scale * q_i.k_j
      var dp = vec4f(0.0); // dout_i.v_j
      for (var d = 0u; d < D4; d++) {
        let x = ks[d];
        let y = vr[d];
        s += vec4f(dot(q[qa0 + d], x), dot(q[qa1 + d], x), dot(q[qa2 + d], x), dot(q[qa3 + d], x));
        dp += vec4f(dot(dout[qa0 + d], y), dot(dout[qa1 + d], y), dot(dout[qa2 + d], y), dot(dout[qa3 + d], y));
      }
      let p = select(vec4f(0.0), exp(s - lse4), live);
      let ds = select(vec4f(0.0), p * (dp - drow4), live);
      for (var d = 0u; d < D4; d++) {
        gv[d] += p.x * dout[qa0 + d] + p.y * dout[qa1 + d] + p.z * dout[qa2 + d] + p.w * dout[qa3 + d];
        gk[d] += ds.x * q[qa0 + d] + ds.y * q[qa1 + d] + ds.z * q[qa2 + d] + ds.w * q[qa3 + d];
      }
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var d = 0u; d < D4; d++) {
    var a = gk[d] * scale;
    var c = gv[d];
    if (acc_old) {
      a += dk[kv_at + d];
      c += dv[kv_at + d];
    }
    dk[kv_at + d] = a;
    dv[kv_at + d] = c;
  }
}
