// Weighted cross-entropy over class logits with label smoothing eps, loss and gradient in ONE dispatch
// (PyTorch's F.cross_entropy(z, y, weight=w, reduction='mean', ignore_index=-1, label_smoothing=eps) for eps = 0):
//   q_b        = (1 - eps) onehot(y_b) + eps / K_cls                            (the smoothed target)
//   nll_b      = logsumexp(z_b) - sum_k q_bk z_bk                               (per-row loss, unweighted)
//   W          = sum_b w[y_b]                        over rows with y_b != -1
//   loss       = sum_b w[y_b] * nll_b / W
//   dlogits_b  = w[y_b] * (softmax(z_b) - q_b) / W,   0 for an ignored row
// logits: [B, K_cls], labels: [B] (f32 holding integer class ids, -1 = ignore), weights: [K_cls],
// loss: [1], dlogits: [B, K_cls], losses: [B] (nll_b, 0 for ignored rows); row-major contiguous f32.
// Every row ignored (W = 0): loss = 0 and dlogits = 0 (PyTorch gives NaN). A label that is neither -1 nor an
// integer in [0, K_cls) makes loss, every dlogits and every losses element NaN (loud, never out of bounds).
// Numerics: logsumexp subtracts the row max, so logits of +-80 give exp(<= 0) and never overflow.
//
// The normaliser W needs every row, so one workgroup does everything (B is at most a few thousand):
//   1. each of the WG invocations sums w[y_b] (and counts invalid labels) over rows b = lid, lid + WG, ...;
//      a tree reduction in workgroup memory gives W to every invocation;
//   2. each invocation walks the same rows: max, sum of exp, nll_b, then writes dlogits_b and losses[b]
//      and accumulates w[y_b] * nll_b; a second tree reduction gives the loss, written by invocation 0.
// Dispatch exactly one workgroup. WG must be a power of 2.

struct Params {
  B: u32,
  K_cls: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 256;

var<workgroup> red: array<vec2f, WG>;

const IGNORE: i32 = -1;
const INVALID: i32 = -2;

// The class id of row b, IGNORE for -1, INVALID for anything else outside [0, K_cls) or not an integer.
fn label_of(b: u32) -> i32 {
  let f = labels[b];
  if (f == -1.0) { return IGNORE; }
  if (f >= 0.0 && f < f32(params.K_cls) && f == floor(f)) { return i32(f); }
  return INVALID;
}

// Sums red[0..WG) into red[0], seen by every invocation after the last barrier.
fn reduce(lid: u32) {
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let B = params.B;
  let K = params.K_cls;

  // 1. W = sum_b w[y_b] and the number of invalid labels.
  var part = vec2f(0.0);
  for (var b = lid; b < B; b = b + WG) {
    let y = label_of(b);
    if (y >= 0) { part.x = part.x + weights[u32(y)]; }
    else if (y == INVALID) { part.y = part.y + 1.0; }
  }
  red[lid] = part;
  reduce(lid);
  let W = red[0].x;
  let bad = red[0].y > 0.0;
  let inv_w = select(0.0, 1.0 / W, W != 0.0);
  // A quiet NaN built from a runtime value: WGSL rejects a NaN constant expression.
  let nan = bitcast<f32>(0x7fc00000u | (K & 0u));
  workgroupBarrier(); // everyone has read red[0] before it is reused

  // 2. per-row loss and gradient.
  var acc = 0.0;
  for (var b = lid; b < B; b = b + WG) {
    let y = label_of(b);
    let row = b * K;
    if (bad || y < 0) {
      let fill = select(0.0, nan, bad);
      for (var k = 0u; k < K; k = k + 1u) { dlogits[row + k] = fill; }
      losses[b] = fill;
      continue;
    }
    var m = logits[row];
    for (var k = 1u; k < K; k = k + 1u) { m = max(m, logits[row + k]); }
    var s = 0.0;
    for (var k = 0u; k < K; k = k + 1u) { s = s + exp(logits[row + k] - m); }
    let eps = params.eps;
    let off = eps / f32(K); // every class's share of the smoothing
    var zq = 0.0; // sum_k q_k z_k
    for (var k = 0u; k < K; k = k + 1u) { zq = zq + (off + select(0.0, 1.0 - eps, k == u32(y))) * logits[row + k]; }
    let nll = m + log(s) - zq;
    let wy = weights[u32(y)];
    losses[b] = nll;
    acc = acc + wy * nll;
    let coef = wy * inv_w;
    let inv_s = 1.0 / s;
    for (var k = 0u; k < K; k = k + 1u) {
      let p = exp(logits[row + k] - m) * inv_s;
      dlogits[row + k] = coef * (p - off - select(0.0, 1.0 - eps, k == u32(y)));
    }
  }
  red[lid] = vec2f(acc, 0.0);
  reduce(lid);
  if (lid == 0u) {
    loss[0] = select(red[0].x * inv_w, nan, bad);
  }
}
