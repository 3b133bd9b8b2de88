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

// ---------------------------------------------------------------------------------------------------------
// Version 4: register blocking, as main_rb in cross-attention.fwd.wgsl. Each invocation owns RB = 4 rows of
// one (b, h) (grid (ceil(rows / (RB*WG)), B*H)), so every vec4 it streams from the other side feeds 4 rows.
//   main_dq_rb   ('cross-attention.bwd.dq.rb')   4 query rows, loops over keys
//   main_dkdv_rb ('cross-attention.bwd.dkdv.rb') 4 key rows, loops over queries
// Same math as main_dq / main_dkdv; rows past the end are computed on a clamped row and not stored.
// Per-row D-vectors live at [r * MAX_D4 + d] of arrays of RB * MAX_D4 = 128 vec4.
const RB: u32 = 4u;

@compute @workgroup_size(WG)
fn main_dq_rb(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let i0 = (wid.x * WG + lid) * RB;
  let bh = wid.y;
  if (i0 >= Tq || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let D4 = params.D / 4u;
  let C4 = H * D4;
  let scale = params.scale;

  var qs: array<vec4f, 128>;  // q_i * scale
  var go: array<vec4f, 128>;  // dout_i
  var acc: array<vec4f, 128>; // sum_j dS_ij k_j
  var lse4 = vec4f(0.0);
  var drow4 = vec4f(0.0);
  for (var r = 0u; r < RB; r++) {
    let i = min(i0 + r, Tq - 1u);
    let q_at = (b * Tq + i) * C4 + h * D4;
    for (var d = 0u; d < D4; d++) {
      qs[r * MAX_D4 + d] = q[q_at + d] * scale;
      go[r * MAX_D4 + d] = dout[q_at + d];
      acc[r * MAX_D4 + d] = vec4f(0.0);
    }
    lse4[r] = lse[bh * Tq + i];
    drow4[r] = drow[bh * Tq + i];
  }
  let live = lse4 >= vec4f(MASKED_LSE_BELOW);

  if (any(live)) {
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
      var s0 = vec4f(0.0); // row r: scale * q_i.k_j for keys j0 .. j0+3
      var s1 = vec4f(0.0);
      var s2 = vec4f(0.0);
      var s3 = vec4f(0.0);
      var e0 = vec4f(0.0); // row r: dout_i.v_j
      var e1 = vec4f(0.0);
      var e2 = vec4f(0.0);
      var e3 = vec4f(0.0);
      for (var d = 0u; d < D4; d++) {
        let kx = k[kv0 + d];
        let ky = k[kv1 + d];
        let kz = k[kv2 + d];
        let kw = k[kv3 + d];
        let vx = v[kv0 + d];
        let vy = v[kv1 + d];
        let vz = v[kv2 + d];
        let vw = v[kv3 + d];
        let a0 = qs[d];
        let a1 = qs[MAX_D4 + d];
        let a2 = qs[2u * MAX_D4 + d];
        let a3 = qs[3u * MAX_D4 + d];
        let g0 = go[d];
        let g1 = go[MAX_D4 + d];
        let g2 = go[2u * MAX_D4 + d];
        let g3 = go[3u * MAX_D4 + d];
        s0 += vec4f(dot(a0, kx), dot(a0, ky), dot(a0, kz), dot(a0, kw));
        s1 += vec4f(dot(a1, kx), dot(a1, ky), dot(a1, kz), dot(a1, kw));
        s2 += vec4f(dot(a2, kx), dot(a2, ky), dot(a2, kz), dot(a2, kw));
        s3 += vec4f(dot(a3, kx), dot(a3, ky), dot(a3, kz), dot(a3, kw));
        e0 += vec4f(dot(g0, vx), dot(g0, vy), dot(g0, vz), dot(g0, vw));
        e1 += vec4f(dot(g1, vx), dot(g1, vy), dot(g1, vz), dot(g1, vw));
        e2 += vec4f(dot(g2, vx), dot(g2, vy), dot(g2, vz), dot(g2, vw));
        e3 += vec4f(dot(g3, vx), dot(g3, vy), dot(g3, vz), dot(g3, vw));
      }
      let z = vec4f(0.0);
      let ds0 = select(z, exp(s0 - lse4.x) * (e0 - drow4.x), keep & vec4<bool>(live.x));
      let ds1 = select(z, exp(s1 - lse4.y) * (e1 - drow4.y), keep & vec4<bool>(live.y));
      let ds2 = select(z, exp(s2 - lse4.z) * (e2 - drow4.z), keep & vec4<bool>(live.z));
      let ds3 = select(z, exp(s3 - lse4.w) * (e3 - drow4.w), keep & vec4<bool>(live.w));
      for (var d = 0u; d < D4; d++) {
        let kx = k[kv0 + d];
        let ky = k[kv1 + d];
        let kz = k[kv2 + d];
        let kw = k[kv3 + d];
        acc[d] += ds0.x * kx + ds0.y * ky + ds0.z * kz + ds0.w * kw;
        acc[MAX_D4 + d] += ds1.x * kx + ds1.y * ky + ds1.z * kz + ds1.w * kw;
        acc[2u * MAX_D4 + d] += ds2.x * kx + ds2.y * ky + ds2.z * kz + ds2.w * kw;
        acc[3u * MAX_D4 + d] += ds3.x * kx + ds3.y * ky + ds3.z * kz + ds3.w * kw;
      }
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var r = 0u; r < RB; r++) {
    let i = i0 + r;
    if (i >= Tq) { break; }
    let q_at = (b * Tq + i) * C4 + h * D4;
    for (var d = 0u; d < D4; d++) {
      var g = acc[r * MAX_D4 + d] * scale;
      if (acc_old) { g += dq[q_at + d]; }
      dq[q_at + d] = g;
    }
  }
}

@compute @workgroup_size(WG)
fn main_dkdv_rb(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let j0 = (wid.x * WG + lid) * RB;
  let bh = wid.y;
  if (j0 >= Tk || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let D4 = params.D / 4u;
  let C4 = H * D4;
  let scale = params.scale;

  var ks: array<vec4f, 128>; // k_j * scale
  var vr: array<vec4f, 128>; // v_j
  var gk: array<vec4f, 128>; // sum_i dS_ij q_i
  var gv: array<vec4f, 128>; // sum_i P_ij dout_i
  var kept = vec4<bool>(false);
  for (var r = 0u; r < RB; r++) {
    let j = min(j0 + r, Tk - 1u);
    let kv_at = (b * Tk + j) * C4 + h * D4;
    for (var d = 0u; d < D4; d++) {
      ks[r * MAX_D4 + d] = k[kv_at + d] * scale;
      vr[r * MAX_D4 + d] = v[kv_at + d];
      gk[r * MAX_D4 + d] = vec4f(0.0);
      gv[r * MAX_D4 + d] = vec4f(0.0);
    }
    kept[r] = j0 + r < Tk && key_kept(b, j);
  }

  if (any(kept)) {
    let stat0 = bh * Tq; // lse / drow of (b, h, query 0)
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
      var s0 = vec4f(0.0); // key r: scale * q_i.k_j for queries i0 .. i0+3
      var s1 = vec4f(0.0);
      var s2 = vec4f(0.0);
      var s3 = vec4f(0.0);
      var e0 = vec4f(0.0); // key r: dout_i.v_j
      var e1 = vec4f(0.0);
      var e2 = vec4f(0.0);
      var e3 = vec4f(0.0);
      for (var d = 0u; d < D4; d++) {
        let qx = q[qa0 + d];
        let qy = q[qa1 + d];
        let qz = q[qa2 + d];
        let qw = q[qa3 + d];
        let ox = dout[qa0 + d];
        let oy = dout[qa1 + d];
        let oz = dout[qa2 + d];
        let ow = dout[qa3 + d];
        let c0 = ks[d];
        let c1 = ks[MAX_D4 + d];
        let c2 = ks[2u * MAX_D4 + d];
        let c3 = ks[3u * MAX_D4 + d];
        let w0 = vr[d];
        let w1 = vr[MAX_D4 + d];
        let w2 = vr[2u * MAX_D4 + d];
        let w3 = vr[3u * MAX_D4 + d];
        s0 += vec4f(dot(qx, c0), dot(qy, c0), dot(qz, c0), dot(qw, c0));
        s1 += vec4f(dot(qx, c1), dot(qy, c1), dot(qz, c1), dot(qw, c1));
        s2 += vec4f(dot(qx, c2), dot(qy, c2), dot(qz, c2), dot(qw, c2));
        s3 += vec4f(dot(qx, c3), dot(qy, c3), dot(qz, c3), dot(qw, c3));
        e0 += vec4f(dot(ox, w0), dot(oy, w0), dot(oz, w0), dot(ow, w0));
        e1 += vec4f(dot(ox, w1), dot(oy, w1), dot(oz, w1), dot(ow, w1));
        e2 += vec4f(dot(ox, w2), dot(oy, w2), dot(oz, w2), dot(ow, w2));
        e3 += vec4f(dot(ox, w3), dot(oy, w3), dot(oz, w3), dot(ow, w3));
      }
      let z = vec4f(0.0);
      let p0 = select(z, exp(s0 - lse4), live);
      let p1 = select(z, exp(s1 - lse4), live);
      let p2 = select(z, exp(s2 - lse4), live);
      let p3 = select(z, exp(s3 - lse4), live);
      let ds0 = select(z, p0 * (e0 - drow4), live);
      let ds1 = select(z, p1 * (e1 - drow4), live);
      let ds2 = select(z, p2 * (e2 - drow4), live);
      let ds3 = select(z, p3 * (e3 - drow4), live);
      for (var d = 0u; d < D4; d++) {
        let qx = q[qa0 + d];
        let qy = q[qa1 + d];
        let qz = q[qa2 + d];
        let qw = q[qa3 + d];
        let ox = dout[qa0 + d];
        let oy = dout[qa1 + d];
        let oz = dout[qa2 + d];
        let ow = dout[qa3 + d];
        gv[d] += p0.x * ox + p0.y * oy + p0.z * oz + p0.w * ow;
        gv[MAX_D4 + d] += p1.x * ox + p1.y * oy + p1.z * oz + p1.w * ow;
        gv[2u * MAX_D4 + d] += p2.x * ox + p2.y * oy + p2.z * oz + p2.w * ow;
        gv[3u * MAX_D4 + d] += p3.x * ox + p3.y * oy + p3.z * oz + p3.w * ow;
        gk[d] += ds0.x * qx + ds0.y * qy + ds0.z * qz + ds0.w * qw;
        gk[MAX_D4 + d] += ds1.x * qx + ds1.y * qy + ds1.z * qz + ds1.w * qw;
        gk[2u * MAX_D4 + d] += ds2.x * qx + ds2.y * qy + ds2.z * qz + ds2.w * qw;
        gk[3u * MAX_D4 + d] += ds3.x * qx + ds3.y * qy + ds3.z * qz + ds3.w * qw;
      }
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var r = 0u; r < RB; r++) {
    let j = j0 + r;
    if (j >= Tk) { break; }
    let kv_at = (b * Tk + j) * C4 + h * D4;
    for (var d = 0u; d < D4; d++) {
      // A padded key gets zero gradients (its row was computed but not kept).
      var a = select(vec4f(0.0), gk[r * MAX_D4 + d] * scale, kept[r]);
      var c = select(vec4f(0.0), gv[r * MAX_D4 + d], kept[r]);
      if (acc_old) {
        a += dk[kv_at + d];
        c += dv[kv_at + d];
      }
      dk[kv_at + d] = a;
      dv[kv_at + d] = c;
    }
  }
}
