// Fused multi-head cross-attention, backward version 5, pass 1 of 2 ('cross-attention.bwd.ds'):
// each (query, key) pair's q.k and dout.v computed ONCE, then P and dS for the gradient pass
// (cross-attention.bwd-grad.wgsl). Per head, with the forward's lse and the pre-pass's Drow:
//   s_ij  = scale * q_i.k_j             P_ij  = exp(s_ij - lse_i)          (the forward's softmax, recomputed)
//   dP_ij = dout_i.v_j                  dS_ij = scale * P_ij (dP_ij - Drow_i)   (scale folded in: dq = dS k,
//                                                                                dk = dS^T q)
// Why a [Tq, Tk] scratch here although the forward keeps none: version 4 (cross-attention.bwd.wgsl) computes
// q.k and dout.v twice (once in the dq kernel, once in the dk/dv kernel: 7 D-long products per pair); this
// pass computes them once (2 products) and the gradient pass does the 3 remaining ones as small matmul tiles
// (5 per pair, FlashAttention-2's count). Without atomics or workgroup reductions (slow on software adapters,
// see DEVELOPERS "Speed on a software adapter"), the dq sums over keys need per-key-block partials; with key
// blocks of D keys those are exactly as large as dS, so dS itself is the partial (one per key). The wrapper
// bounds the scratch by running the backward over chunks of (b, h) (bh0, BHc below).
//
// Layouts (row-major contiguous f32; C = H*D; head h owns channels h*D .. h*D+D-1):
//   q, dout        [B, Tq, C]        read as vec4 (D % 4 == 0)
//   k, v           [B, Tk, C]
//   mask           [B, Tk]           1 keep / 0 pad; ignored when has_mask == 0
//   lse, drow      [B, H, Tq]        lse < -1e29: fully masked row (the forward's sentinel -1e30)
//   p, ds          [BHc, Tq, Tk4]    for (b, h) = bh0 .. bh0+BHc-1; Tk4 = Tk rounded up to 4 (vec4 rows);
//                                    padded keys, keys past Tk and fully masked rows hold 0
// Algorithm (the layout of the forward's main_rb): one invocation owns RB = 4 query rows of one (b, h), grid
// (ceil(Tq / (RB*WG)), 1, BHc), keeps their q * scale and dout in registers (arrays indexed by the loop
// counter) and streams the keys of its (b, h) in blocks of 4, writing one vec4 of P and of dS per row and
// block. The k / v addresses depend only on the workgroup and the loop counters, so they are uniform loads
// (one per workgroup batch on llvmpipe, not a per-invocation gather). Measured here against a tile layout (4
// queries x 4 keys per invocation, q / dout gathered per invocation): 0.6-0.75x its CPU time.

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  Tk: u32,
  D: u32,
  has_mask: u32,
  scale: f32,
  bh0: u32,
  Tk4: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> k: array<vec4f>;
@group(0) @binding(2) var<storage, read> v: array<vec4f>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<vec4f>;
@group(0) @binding(6) var<storage, read> drow: array<f32>;
@group(0) @binding(7) var<storage, read_write> p: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> ds: array<vec4f>;
@group(0) @binding(9) var<uniform> params: Params;

override WG: u32 = 16; // invocations per workgroup (RB query rows each)
// 1 (v6): q.k and dout.v of a key block in two loops over d, 4 score accumulators live in each; 0 (v5): one
// loop with all 8. On llvmpipe the split loops took 0.65-0.7x the CPU time (least process CPU time per call
// over 9 interleaved runs: B=1 T=512 H=8 D=64 143 -> 99-104 ms, B=32 Tq=64 Tk=128 H=4 D=64 74 -> 52-56 ms;
// fixing the head size per pipeline as the forward does made no difference here).
override SPLIT: u32 = 1u;

const MASKED_LSE_BELOW: f32 = -1.0e29;

fn key_kept(b: u32, j: u32) -> bool {
  return j < params.Tk && (params.has_mask == 0u || mask[b * params.Tk + j] != 0.0);
}

const RB: u32 = 4u;
const MAX_D4: u32 = 32u; // D <= 128

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Tq = params.Tq;
  let Tk = params.Tk;
  let H = params.H;
  let i0 = (wid.x * WG + lid) * RB;
  let zc = wid.z;
  let bh = params.bh0 + zc;
  if (i0 >= Tq || bh >= params.B * H) { return; }
  let h = bh % H;
  let b = bh / H;
  let D4 = params.D / 4u;
  let C4 = H * D4;
  let hd = h * D4;
  let scale = params.scale;

  var qs: array<vec4f, 128>; // RB * MAX_D4: q * scale of rows i0 .. i0+3
  var go: array<vec4f, 128>; // dout of rows i0 .. i0+3
  var lse4 = vec4f(0.0);
  var drow4 = vec4f(0.0);
  for (var r = 0u; r < RB; r++) {
    let i = min(i0 + r, Tq - 1u);
    let q_at = (b * Tq + i) * C4 + hd;
    for (var d = 0u; d < D4; d++) {
      qs[r * MAX_D4 + d] = q[q_at + d] * scale;
      go[r * MAX_D4 + d] = dout[q_at + d];
    }
    lse4[r] = lse[bh * Tq + i];
    drow4[r] = drow[bh * Tq + i];
  }
  let live = lse4 >= vec4f(MASKED_LSE_BELOW);
  let tk4v = params.Tk4 / 4u;
  let at0 = (zc * Tq + i0) * tk4v;
  let at1 = (zc * Tq + min(i0 + 1u, Tq - 1u)) * tk4v;
  let at2 = (zc * Tq + min(i0 + 2u, Tq - 1u)) * tk4v;
  let at3 = (zc * Tq + min(i0 + 3u, Tq - 1u)) * tk4v;
  let z = vec4f(0.0);

  for (var jt = 0u; jt < tk4v; jt++) {
    let j0 = jt * 4u;
    let keep = vec4<bool>(key_kept(b, j0), key_kept(b, j0 + 1u), key_kept(b, j0 + 2u), key_kept(b, j0 + 3u));
    let kv0 = (b * Tk + min(j0, Tk - 1u)) * C4 + hd;
    let kv1 = (b * Tk + min(j0 + 1u, Tk - 1u)) * C4 + hd;
    let kv2 = (b * Tk + min(j0 + 2u, Tk - 1u)) * C4 + hd;
    let kv3 = (b * Tk + min(j0 + 3u, Tk - 1u)) * C4 + hd;
    var s0 = vec4f(0.0); // row r: scale * q_i.k_j for keys j0 .. j0+3
    var s1 = vec4f(0.0);
    var s2 = vec4f(0.0);
    var s3 = vec4f(0.0);
    var e0 = vec4f(0.0); // row r: dout_i.v_j
    var e1 = vec4f(0.0);
    var e2 = vec4f(0.0);
    var e3 = vec4f(0.0);
    if (any(keep)) {
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
        if (SPLIT == 0u) {
          let vx = v[kv0 + d];
          let vy = v[kv1 + d];
          let vz = v[kv2 + d];
          let vw = v[kv3 + d];
          let g0 = go[d];
          let g1 = go[MAX_D4 + d];
          let g2 = go[2u * MAX_D4 + d];
          let g3 = go[3u * MAX_D4 + d];
          e0 += vec4f(dot(g0, vx), dot(g0, vy), dot(g0, vz), dot(g0, vw));
          e1 += vec4f(dot(g1, vx), dot(g1, vy), dot(g1, vz), dot(g1, vw));
          e2 += vec4f(dot(g2, vx), dot(g2, vy), dot(g2, vz), dot(g2, vw));
          e3 += vec4f(dot(g3, vx), dot(g3, vy), dot(g3, vz), dot(g3, vw));
        }
      }
      if (SPLIT != 0u) {
        for (var d = 0u; d < D4; d++) {
          let vx = v[kv0 + d];
          let vy = v[kv1 + d];
          let vz = v[kv2 + d];
          let vw = v[kv3 + d];
          let g0 = go[d];
          let g1 = go[MAX_D4 + d];
          let g2 = go[2u * MAX_D4 + d];
          let g3 = go[3u * MAX_D4 + d];
          e0 += vec4f(dot(g0, vx), dot(g0, vy), dot(g0, vz), dot(g0, vw));
          e1 += vec4f(dot(g1, vx), dot(g1, vy), dot(g1, vz), dot(g1, vw));
          e2 += vec4f(dot(g2, vx), dot(g2, vy), dot(g2, vz), dot(g2, vw));
          e3 += vec4f(dot(g3, vx), dot(g3, vy), dot(g3, vz), dot(g3, vw));
        }
      }
    }
    let p0 = select(z, exp(s0 - lse4.x), keep & vec4<bool>(live.x));
    let p1 = select(z, exp(s1 - lse4.y), keep & vec4<bool>(live.y));
    let p2 = select(z, exp(s2 - lse4.z), keep & vec4<bool>(live.z));
    let p3 = select(z, exp(s3 - lse4.w), keep & vec4<bool>(live.w));
    // Rows past Tq write the clamped last row's values again (the same values: harmless).
    p[at0 + jt] = p0;
    p[at1 + jt] = p1;
    p[at2 + jt] = p2;
    p[at3 + jt] = p3;
    ds[at0 + jt] = p0 * (e0 - drow4.x) * scale;
    ds[at1 + jt] = p1 * (e1 - drow4.y) * scale;
    ds[at2 + jt] = p2 * (e2 - drow4.z) * scale;
    ds[at3 + jt] = p3 * (e3 - drow4.w) * scale;
  }
}
