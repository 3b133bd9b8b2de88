// Fused multi-head cross-attention, forward (flash-style: one pass, online softmax).
//
// Layouts (row-major contiguous f32; C = H*D; head h owns channels h*D .. h*D+D-1 of every row, so no
// head-split kernel is needed: heads are indexed here):
//   q     [B, Tq, C]   queries, read as vec4 (D % 4 == 0, so a head's D channels are D/4 whole vec4s)
//   k, v  [B, Tk, C]   keys and values (self-attention: k = v = the same sequence, even the same buffer)
//   mask  [B, Tk]      key padding mask, 1 keep / 0 pad (any nonzero keeps); ignored when has_mask == 0
//   out   [B, Tq, C]   softmax(scale * q_h k_h^T + mask) v_h, per head, written back into the head's channels
//   lse   [B, H, Tq]   per-row log-sum-exp of the scaled, masked scores: what the backward recomputes P from
//
// Algorithm: one invocation owns one query row of one head (row = (b*H + h)*Tq + i, which is also its lse
// index) and keeps q*scale and its D-vector accumulator in registers (arrays of vec4, D <= 128). It streams
// the K/V rows of its (b, h) in blocks of 4 keys: 4 scores, the block max m_blk, and when m_blk exceeds the
// running max m the accumulator and the running denominator l are rescaled by exp(m - m_blk) once per
// block; then acc += sum_u exp(s_u - m) v_u. At the end out = acc / l and lse = m + log(l). The [Tq, Tk]
// score matrix never exists in device memory. A workgroup holds WG consecutive rows (mostly one (b, h)), so
// its invocations stream the same K/V rows (cache-friendly on CPUs); WG is an override. (The GPU-friendly
// variant, K/V tiles staged in workgroup memory, is left for the tuning task: on llvmpipe barriers and
// workgroup memory are slow and the register design wins.)
//
// Fully masked row (every key padded, or Tk == 0): out = 0 and lse = MASKED_LSE = -1e30, a sentinel the
// backward recognises (lse < -1e29) so no gradient flows from that row.
//
// FLOP convention (used by the benchmark): forward = 4*B*H*Tq*Tk*D (2*D for q.k, 2*D for p*v, per pair);
// backward ~ 2.5x forward = 10*B*H*Tq*Tk*D (q.k, dout.v, dq, dk, dv: 5 products of 2*D flops per pair;
// the two-kernel backward without atomics actually executes 14*D per pair, q.k and dout.v being
// recomputed in both kernels, but the convention counts the algorithm, not the recompute).
// Memory saved by fusing versus materialising scores: the [B, H, Tq, Tk] f32 score/probability matrix
// (4*B*H*Tq*Tk bytes, written and read back at least twice: scores, softmax, P*V) is replaced by the
// [B, H, Tq] lse (4*B*H*Tq bytes), i.e. a factor Tk less; e.g. B=32, H=8, Tq=Tk=512: 268 MB vs 0.5 MB.

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  Tk: u32,
  D: u32,
  has_mask: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// Query rows per workgroup (one invocation each).
override WG: u32 = 64;
// Head size D/4 fixed at pipeline creation (0: read params.D at run time, version 1 of these kernels).
// Fixed, every loop over d has a constant trip count: the compiler unrolls it and keeps the per-row arrays
// in registers instead of indexing them dynamically (on llvmpipe: per-lane scratch memory). The wrapper
// sets it from the tensors' D, so a pipeline exists per head size (one or two per model), never per B/Tq/Tk.
override D4_FIXED: u32 = 0u;
// 1: grid (ceil(Tq / WG), B*H), one (b, h) per workgroup (version 3); 0: flat 1-D grid over B*H*Tq rows.
override GRID_BH: u32 = 0u;

const MAX_D4: u32 = 32u;        // D <= 128
const NEG_BIG: f32 = -3.0e38;   // "minus infinity" that stays finite: exp(NEG_BIG - x) == 0, no NaN
const MASKED_LSE: f32 = -1.0e30; // lse of a fully masked row

fn key_kept(b: u32, j: u32) -> bool {
  return params.has_mask == 0u || mask[b * params.Tk + j] != 0.0;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  var row: u32;
  var i: u32;
  var bh: u32;
  if (GRID_BH != 0u) {
    // grid (ceil(Tq / WG), B*H): (b, h) comes from the workgroup alone, so every K/V address below is the
    // same for all invocations of a workgroup (a uniform load: one load + broadcast on llvmpipe).
    i = wid.x * WG + lid;
    bh = wid.y;
    if (i >= Tq || bh >= params.B * H) { return; }
    row = bh * Tq + i;
  } else {
    row = (wid.x + wid.y * nwg.x) * WG + lid; // flat, folded 1-D grid (versions 1 and 2)
    if (row >= params.B * H * Tq) { return; }
    i = row % Tq;
    bh = row / Tq;
  }
  let h = bh % H;
  let b = bh / H;
  let D4 = select(params.D / 4u, D4_FIXED, D4_FIXED != 0u);
  let C4 = H * D4;
  let q_at = (b * Tq + i) * C4 + h * D4;

  var qs: array<vec4f, MAX_D4>;  // q * scale
  var acc: array<vec4f, MAX_D4>; // sum_j exp(s_j - m) v_j
  for (var d = 0u; d < D4; d++) {
    qs[d] = q[q_at + d] * params.scale;
    acc[d] = vec4f(0.0);
  }
  var m = NEG_BIG; // running max of the scores seen
  var l = 0.0;     // running sum of exp(s_j - m)

  for (var j0 = 0u; j0 < Tk; j0 += 4u) {
    // Keys j0 .. j0+3; those past Tk or padded are dropped (their rows clamped to stay in bounds).
    var keep = vec4<bool>(false);
    for (var u = 0u; u < 4u; u++) {
      if (j0 + u < Tk) { keep[u] = key_kept(b, j0 + u); }
    }
    if (!any(keep)) { continue; }
    let kv0 = (b * Tk + j0) * C4 + h * D4;
    let kv1 = (b * Tk + min(j0 + 1u, Tk - 1u)) * C4 + h * D4;
    let kv2 = (b * Tk + min(j0 + 2u, Tk - 1u)) * C4 + h * D4;
    let kv3 = (b * Tk + min(j0 + 3u, Tk - 1u)) * C4 + h * D4;
    var s = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      let x = qs[d];
      s += vec4f(dot(x, k[kv0 + d]), dot(x, k[kv1 + d]), dot(x, k[kv2 + d]), dot(x, k[kv3 + d]));
    }
    s = select(vec4f(NEG_BIG), s, keep);
    let m_blk = max(max(s.x, s.y), max(s.z, s.w));
    if (m_blk > m) {
      // The max grew: rescale what was accumulated under the old max.
      let alpha = exp(m - m_blk);
      l *= alpha;
      for (var d = 0u; d < D4; d++) { acc[d] *= alpha; }
      m = m_blk;
    }
    let p = select(vec4f(0.0), exp(s - m), keep);
    l += p.x + p.y + p.z + p.w;
    for (var d = 0u; d < D4; d++) {
      acc[d] += p.x * v[kv0 + d] + p.y * v[kv1 + d] + p.z * v[kv2 + d] + p.w * v[kv3 + d];
    }
  }

  if (l > 0.0) {
    let inv_l = 1.0 / l;
    for (var d = 0u; d < D4; d++) { out[q_at + d] = acc[d] * inv_l; }
    lse[row] = m + log(l);
  } else {
    for (var d = 0u; d < D4; d++) { out[q_at + d] = vec4f(0.0); }
    lse[row] = MASKED_LSE;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Version 4, entry point main_rb ('cross-attention.fwd.rb'): register blocking over query rows. Each
// invocation owns RB = 4 consecutive query rows i0 .. i0+3 of one (b, h) (grid (ceil(Tq / (RB*WG)), B*H)):
// every K or V vec4 it loads feeds 4 rows instead of 1, so loads per FMA drop 4x (on llvmpipe each per-lane
// load is a gather; that is what v1..v3 spend their time on). Same math as main: per row a running max m,
// denominator l and accumulator, rescaled when a key block raises the max; rows past Tq are computed on a
// clamped row and not stored. qs and acc hold row r's D-vector at [r * MAX_D4 + d].
// Version 6 (the product): the wrapper sets D4_FIXED = D/4, so every loop over d has a constant trip count,
// is unrolled, and qs / acc are indexed by constants; with D read at run time (D4_FIXED 0, the bench's v4)
// they are indexed dynamically. Measured (least process CPU time per call over 7-15 interleaved runs,
// llvmpipe on a loaded machine): B=1 T=512 H=8 D=64 135-182 -> 129-150 ms, B=32 Tq=64 Tk=128 H=8 D=32
// 87-95 -> 69-73 ms, H=4 D=64 70 -> 60 ms: 5-25% less. (For v1's single row, fixing D was slower: v2.)
const RB: u32 = 4u;

fn hmax(x: vec4f) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

fn hsum(x: vec4f) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

@compute @workgroup_size(WG)
fn main_rb(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let i0 = (wid.x * WG + lid) * RB;
  let bh = wid.y;
  if (i0 >= Tq || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let D4 = select(params.D / 4u, D4_FIXED, D4_FIXED != 0u);
  let C4 = H * D4;

  var qs: array<vec4f, 128>;  // RB * MAX_D4: q * scale of rows i0 .. i0+3
  var acc: array<vec4f, 128>; // RB * MAX_D4
  for (var r = 0u; r < RB; r++) {
    let q_at = (b * Tq + min(i0 + r, Tq - 1u)) * C4 + h * D4;
    for (var d = 0u; d < D4; d++) {
      qs[r * MAX_D4 + d] = q[q_at + d] * params.scale;
      acc[r * MAX_D4 + d] = vec4f(0.0);
    }
  }
  var m = vec4f(NEG_BIG); // running max, one per row
  var l = vec4f(0.0);     // running denominator, one per row

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
    // s_r = scores of row r against keys j0 .. j0+3
    var s0 = vec4f(0.0);
    var s1 = vec4f(0.0);
    var s2 = vec4f(0.0);
    var s3 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      let kx = k[kv0 + d];
      let ky = k[kv1 + d];
      let kz = k[kv2 + d];
      let kw = k[kv3 + d];
      let a0 = qs[d];
      let a1 = qs[MAX_D4 + d];
      let a2 = qs[2u * MAX_D4 + d];
      let a3 = qs[3u * MAX_D4 + d];
      s0 += vec4f(dot(a0, kx), dot(a0, ky), dot(a0, kz), dot(a0, kw));
      s1 += vec4f(dot(a1, kx), dot(a1, ky), dot(a1, kz), dot(a1, kw));
      s2 += vec4f(dot(a2, kx), dot(a2, ky), dot(a2, kz), dot(a2, kw));
      s3 += vec4f(dot(a3, kx), dot(a3, ky), dot(a3, kz), dot(a3, kw));
    }
    let nb = vec4f(NEG_BIG);
    s0 = select(nb, s0, keep);
    s1 = select(nb, s1, keep);
    s2 = select(nb, s2, keep);
    s3 = select(nb, s3, keep);
    let m_blk = vec4f(hmax(s0), hmax(s1), hmax(s2), hmax(s3));
    if (any(m_blk > m)) {
      let m_new = max(m, m_blk);
      let alpha = exp(m - m_new); // 1 for rows whose max did not grow
      l *= alpha;
      for (var d = 0u; d < D4; d++) {
        acc[d] *= alpha.x;
        acc[MAX_D4 + d] *= alpha.y;
        acc[2u * MAX_D4 + d] *= alpha.z;
        acc[3u * MAX_D4 + d] *= alpha.w;
      }
      m = m_new;
    }
    let z = vec4f(0.0);
    let p0 = select(z, exp(s0 - m.x), keep);
    let p1 = select(z, exp(s1 - m.y), keep);
    let p2 = select(z, exp(s2 - m.z), keep);
    let p3 = select(z, exp(s3 - m.w), keep);
    l += vec4f(hsum(p0), hsum(p1), hsum(p2), hsum(p3));
    for (var d = 0u; d < D4; d++) {
      let vx = v[kv0 + d];
      let vy = v[kv1 + d];
      let vz = v[kv2 + d];
      let vw = v[kv3 + d];
      acc[d] += p0.x * vx + p0.y * vy + p0.z * vz + p0.w * vw;
      acc[MAX_D4 + d] += p1.x * vx + p1.y * vy + p1.z * vz + p1.w * vw;
      acc[2u * MAX_D4 + d] += p2.x * vx + p2.y * vy + p2.z * vz + p2.w * vw;
      acc[3u * MAX_D4 + d] += p3.x * vx + p3.y * vy + p3.z * vz + p3.w * vw;
    }
  }

  for (var r = 0u; r < RB; r++) {
    let i = i0 + r;
    if (i >= Tq) { break; }
    let q_at = (b * Tq + i) * C4 + h * D4;
    let row = bh * Tq + i;
    let lr = l[r];
    if (lr > 0.0) {
      let inv_l = 1.0 / lr;
      for (var d = 0u; d < D4; d++) { out[q_at + d] = acc[r * MAX_D4 + d] * inv_l; }
      lse[row] = m[r] + log(lr);
    } else {
      for (var d = 0u; d < D4; d++) { out[q_at + d] = vec4f(0.0); }
      lse[row] = MASKED_LSE;
    }
  }
}
