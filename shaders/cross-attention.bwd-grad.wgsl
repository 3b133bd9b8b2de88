// Fused multi-head cross-attention, backward version 5, pass 2 of 2: the gradients from pass 1's P and dS
// (cross-attention.bwd-ds.wgsl; dS already carries the score scale). Per head:
//   main_dq   ('cross-attention.bwd.grad.dq')    dq_i = sum_j dS_ij k_j           (reduction over keys)
//   main_dkdv ('cross-attention.bwd.grad.dkdv')  dk_j = sum_i dS_ij q_i,  dv_j = sum_i P_ij dout_i
//                                                                                 (reduction over queries)
// Three D-long products per pair, none recomputed (pass 1 did the other two).
//
// Layouts (row-major contiguous f32; C = H*D; head h owns channels h*D .. h*D+D-1):
//   q, dout, dq    [B, Tq, C]       read and written as vec4 (D % 4 == 0)
//   k, dk, dv      [B, Tk, C]
//   p, ds          [BHc, Tq, Tk4]   pass 1's scratch for (b, h) = bh0 .. bh0+BHc-1 (zero at padded keys,
//                                   keys past Tk and fully masked rows, so those get zero gradients)
// accumulate = 1 adds into dq / dk / dv instead of overwriting them.
// Algorithm (a small matmul per (b, h), like shaders/matmul.fwd.wgsl: no workgroup memory, no barriers):
// one invocation owns 4 rows (queries for dq, keys for dk/dv) x CB vec4s of channels, accumulators in
// arrays indexed only by constant-trip loops (unrolled: registers). The channel block is the workgroup's
// (grid (ceil(4-row tiles / WG), ceil(D/4 / CB), BHc)), so the streamed rows (k for dq; q, dout for dk/dv)
// have the same address in every invocation: uniform loads, one per workgroup on llvmpipe instead of a
// gather per invocation. main_dq per block of 4 keys gathers 4 dS vec4s and loads 4*CB uniform k vec4s for
// 16*CB vec4 FMAs; main_dkdv per query gathers a P and a dS vec4 and loads 2*CB uniform q / dout vec4s for
// 8*CB. More channels per invocation amortise those gathers but hold more accumulators: on llvmpipe (least
// process CPU time per call, B=1 T=512 H=8 D=64 / B=32 Tq=64 Tk=128 H=4 D=64) main_dq took 61 / 28 ms at
// CB 1, 75 / 37 at 2, 93 / 39 at 4; main_dkdv 110 / 48 at CB 1, 93 / 47 at 2, 170 / 83 at 3, 160 / 80 at 4,
// 114 / 58 at 8. v6 (the product) runs main_dq with CB 1 and main_dkdv with CB 2 (v5: 4 and 4).

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  Tk: u32,
  D: u32,
  bh0: u32,
  Tk4: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> dout: array<vec4f>;
@group(0) @binding(3) var<storage, read> p: array<vec4f>;
@group(0) @binding(4) var<storage, read> ds: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> dq: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dv: array<vec4f>;
@group(0) @binding(8) var<uniform> params: Params;

override WG: u32 = 16; // invocations per workgroup
override CB: u32 = 4;  // vec4s of channels per invocation, 1..MAX_CB
const MAX_CB: u32 = 4u;

@compute @workgroup_size(WG)
fn main_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let D4 = params.D / 4u;
  let i0 = (wid.x * WG + lid) * 4u; // query tile (per invocation)
  let c0 = wid.y * CB;               // channel block (per workgroup: the k loads are uniform)
  let zc = wid.z;
  let bh = params.bh0 + zc;
  if (i0 >= Tq || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let C4 = H * D4;
  let hd = h * D4;
  let tk4v = params.Tk4 / 4u;
  // dS rows of queries i0 .. i0+3 (clamped: rows past Tq are computed and not stored).
  let r0 = (zc * Tq + i0) * tk4v;
  let r1 = (zc * Tq + min(i0 + 1u, Tq - 1u)) * tk4v;
  let r2 = (zc * Tq + min(i0 + 2u, Tq - 1u)) * tk4v;
  let r3 = (zc * Tq + min(i0 + 3u, Tq - 1u)) * tk4v;

  var acc: array<vec4f, 16>; // [row r * MAX_CB + channel block c]
  for (var a = 0u; a < 16u; a++) { acc[a] = vec4f(0.0); }
  for (var jt = 0u; jt < tk4v; jt++) {
    let d0 = ds[r0 + jt]; // dS of query i0 against keys 4jt .. 4jt+3
    let d1 = ds[r1 + jt];
    let d2 = ds[r2 + jt];
    let d3 = ds[r3 + jt];
    let j0 = jt * 4u;
    let ka0 = (b * Tk + min(j0, Tk - 1u)) * C4 + hd;
    let ka1 = (b * Tk + min(j0 + 1u, Tk - 1u)) * C4 + hd;
    let ka2 = (b * Tk + min(j0 + 2u, Tk - 1u)) * C4 + hd;
    let ka3 = (b * Tk + min(j0 + 3u, Tk - 1u)) * C4 + hd;
    for (var c = 0u; c < CB; c++) {
      let ch = min(c0 + c, D4 - 1u);
      let kx = k[ka0 + ch];
      let ky = k[ka1 + ch];
      let kz = k[ka2 + ch];
      let kw = k[ka3 + ch];
      acc[c] += d0.x * kx + d0.y * ky + d0.z * kz + d0.w * kw;
      acc[MAX_CB + c] += d1.x * kx + d1.y * ky + d1.z * kz + d1.w * kw;
      acc[2u * MAX_CB + c] += d2.x * kx + d2.y * ky + d2.z * kz + d2.w * kw;
      acc[3u * MAX_CB + c] += d3.x * kx + d3.y * ky + d3.z * kz + d3.w * kw;
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var r = 0u; r < 4u; r++) {
    if (i0 + r >= Tq) { break; }
    let at = (b * Tq + i0 + r) * C4 + hd;
    for (var c = 0u; c < CB; c++) {
      if (c0 + c >= D4) { break; }
      var g = acc[r * MAX_CB + c];
      if (acc_old) { g += dq[at + c0 + c]; }
      dq[at + c0 + c] = g;
    }
  }
}

@compute @workgroup_size(WG)
fn main_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let D4 = params.D / 4u;
  let jt = wid.x * WG + lid; // key tile (per invocation): keys 4jt .. 4jt+3
  let j0 = jt * 4u;
  let c0 = wid.y * CB;       // channel block (per workgroup: the q / dout loads are uniform)
  let zc = wid.z;
  let bh = params.bh0 + zc;
  if (j0 >= Tk || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let C4 = H * D4;
  let hd = h * D4;
  let tk4v = params.Tk4 / 4u;

  var gk: array<vec4f, 16>; // [key r * MAX_CB + channel block c]
  var gv: array<vec4f, 16>;
  for (var a = 0u; a < 16u; a++) {
    gk[a] = vec4f(0.0);
    gv[a] = vec4f(0.0);
  }
  for (var i = 0u; i < Tq; i++) {
    let at = (zc * Tq + i) * tk4v + jt;
    let pr = p[at];  // P of query i against keys j0 .. j0+3
    let dr = ds[at];
    let qa = (b * Tq + i) * C4 + hd;
    for (var c = 0u; c < CB; c++) {
      let ch = min(c0 + c, D4 - 1u);
      let x = q[qa + ch];
      let o = dout[qa + ch];
      gk[c] += dr.x * x;
      gk[MAX_CB + c] += dr.y * x;
      gk[2u * MAX_CB + c] += dr.z * x;
      gk[3u * MAX_CB + c] += dr.w * x;
      gv[c] += pr.x * o;
      gv[MAX_CB + c] += pr.y * o;
      gv[2u * MAX_CB + c] += pr.z * o;
      gv[3u * MAX_CB + c] += pr.w * o;
    }
  }
  let acc_old = params.accumulate != 0u;
  for (var r = 0u; r < 4u; r++) {
    if (j0 + r >= Tk) { break; }
    let at = (b * Tk + j0 + r) * C4 + hd;
    for (var c = 0u; c < CB; c++) {
      if (c0 + c >= D4) { break; }
      var a = gk[r * MAX_CB + c];
      var e = gv[r * MAX_CB + c];
      if (acc_old) {
        a += dk[at + c0 + c];
        e += dv[at + c0 + c];
      }
      dk[at + c0 + c] = a;
      dv[at + c0 + c] = e;
    }
  }
}
