// Batched matmul forward with fused bias and GELU epilogue:
//   C[z] = sum_{r < reduce} op(A[s]) @ op(B[s])   with s = z * reduce + r   (reduce = 1: plain batched matmul)
//   C[z] = gelu(C[z] + bias)                       (bias and gelu optional; gelu = 1 the tanh form, 2 the erf
//                                                   form of shaders/gelu.fwd.wgsl, same formulas and clamps)
// FLOP count convention (benchmark suite): 2 * M * N * K per output batch and reduced slice, i.e.
// 2 * M * N * K * batch * reduce in total; bias and GELU are not counted.
//
// Layouts (row-major contiguous f32; slice s of A starts at s * a_batch_stride, of B at s * b_batch_stride):
//   A: op(A) is [M, K]; stored [*, M, K] (trans_a = 0) or [*, K, M] (trans_a = 1)
//   B: op(B) is [K, N]; stored [*, K, N] (trans_b = 0) or [*, N, K] (trans_b = 1);
//      b_batch_stride = 0 broadcasts one B to every batch (linear layer x[B*T, Cin] @ W)
//   bias: [N] (read only when has_bias = 1; otherwise any 1-element dummy)
//   C: [batch, M, N]. accumulate = 1 adds the epilogue's result into C instead of overwriting it.
//   pre: [batch, M, N], the pre-activation (after bias, before GELU) for the GELU backward; written only when
//        write_pre = 1 (otherwise any 1-element dummy). Never accumulated.
// `reduce` > 1 sums consecutive batch slices into one output: the backward uses it for dB of a broadcast B
// (dB = sum_b op(A[b])^T @ dC[b]) in one dispatch.
//
// Algorithm: no workgroup memory, no barriers (llvmpipe: register blocking wins). Each invocation owns a
// TM x 4 block of C (TM rows, one vec4 of 4 columns) in registers and walks k: per k it loads TM values of
// op(A) and 4 of op(B) (gathered into a vec4 through the strides of the layout) and does TM vec4 FMAs.
// k runs in chunks of KC = 64 summed separately (two-level summation keeps f32 error low for K in the 1000s).
// Tails: row / column indices are clamped to M-1 / N-1 for the loads (always in bounds, no branch in the
// k loop) and the stores are masked. Grid: (ceil(N / (4 WG_X)), ceil(M / (TM WG_Y)), batch).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  reduce: u32,
  a_batch_stride: u32,
  b_batch_stride: u32,
  trans_a: u32,
  trans_b: u32,
  has_bias: u32,
  gelu: u32,  // 0 none, 1 tanh form, 2 erf form
  write_pre: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override WG_X: u32 = 8;  // invocations along N (each covers 4 columns)
override WG_Y: u32 = 8;  // invocations along M (each covers TM rows)
override TM: u32 = 4;    // rows of C per invocation, 1..MAX_TM

const MAX_TM: u32 = 8;
override KC: u32 = 64;   // k terms summed per partial accumulator (two-level summation)
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;

fn gelu(v: f32) -> f32 {
  let t = tanh(clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), -15.0, 15.0));
  return 0.5 * v * (1.0 + t);
}

// erf_f32(v): shaders/gelu.erf.wgsl, appended to this source by its op (packages/kernels/src/ops/gelu.ts ERF_WGSL).

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let n0 = (wid.x * WG_X + lid.x) * 4u;
  let m0 = (wid.y * WG_Y + lid.y) * TM;
  if (n0 >= N || m0 >= M) { return; }
  let z = wid.z;

  // Strides of op(A)[m, k] and op(B)[k, n] in storage.
  var a_sm = K;
  var a_sk = 1u;
  if (params.trans_a != 0u) { a_sm = 1u; a_sk = M; }
  var b_sk = N;
  var b_sn = 1u;
  if (params.trans_b != 0u) { b_sk = 1u; b_sn = K; }

  // Clamped column offsets: loads stay in bounds, the store is masked.
  let bn = vec4u(min(n0, N - 1u), min(n0 + 1u, N - 1u), min(n0 + 2u, N - 1u), min(n0 + 3u, N - 1u)) * b_sn;

  var acc: array<vec4f, MAX_TM>;
  for (var i = 0u; i < TM; i = i + 1u) { acc[i] = vec4f(0.0); }

  for (var r = 0u; r < params.reduce; r = r + 1u) {
    let s = z * params.reduce + r;
    let a_base = s * params.a_batch_stride;
    let b_base = s * params.b_batch_stride;
    var a_row: array<u32, MAX_TM>;
    for (var i = 0u; i < TM; i = i + 1u) { a_row[i] = a_base + min(m0 + i, M - 1u) * a_sm; }
    var b_col = vec4u(b_base) + bn;
    var a_k = 0u;
    for (var k0 = 0u; k0 < K; k0 = k0 + KC) {
      // Sum a chunk of KC terms on its own, then add it in: the f32 rounding chain is ~K/KC + KC long, not K.
      var part: array<vec4f, MAX_TM>;
      for (var i = 0u; i < TM; i = i + 1u) { part[i] = vec4f(0.0); }
      let k1 = min(k0 + KC, K);
      for (var k = k0; k < k1; k = k + 1u) {
        let bv = vec4f(b[b_col.x], b[b_col.y], b[b_col.z], b[b_col.w]);
        for (var i = 0u; i < TM; i = i + 1u) {
          part[i] = fma(vec4f(a[a_row[i] + a_k]), bv, part[i]);
        }
        b_col = b_col + vec4u(b_sk);
        a_k = a_k + a_sk;
      }
      for (var i = 0u; i < TM; i = i + 1u) { acc[i] = acc[i] + part[i]; }
    }
  }

  let c_base = z * M * N;
  for (var i = 0u; i < TM; i = i + 1u) {
    let m = m0 + i;
    if (m >= M) { break; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let n = n0 + j;
      if (n >= N) { break; }
      var v = acc[i][j];
      if (params.has_bias != 0u) { v = v + bias[n]; }
      let idx = c_base + m * N + n;
      if (params.write_pre != 0u) { pre[idx] = v; }
      if (params.gelu == 1u) { v = gelu(v); }
      if (params.gelu == 2u) { v = 0.5 * v * (1.0 + erf_f32(v * INV_SQRT_2)); }
      if (params.accumulate != 0u) { v = v + c[idx]; }
      c[idx] = v;
    }
  }
}
