// GELU backward, dx = dy * gelu'(x), in one of two forms (params.erf):
//   erf = 0, tanh form: with t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3):
//     gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
//   erf = 1, exact form: gelu'(x) = 0.5 (1 + erf(x / sqrt(2))) + x exp(-x^2 / 2) / sqrt(2 pi)
// x, dy, dx: [n] contiguous f32. `accumulate` = 1 adds into dx instead of overwriting it.

struct Params {
  n: u32,
  accumulate: u32,
  erf: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erf(x) = x P(x^2) / Q(x^2) on [-4, 4], +-1 beyond (1 - erf(4) = 1.5e-8): the rational approximation of XLA's
// ErfImpl32 (also Eigen's generic_fast_erf_float). Only multiply-add and one divide, no exp. |error| <= 6.5e-8 in
// exact arithmetic, about 4.5e-7 evaluated in f32 (measured against C's erf on 2M points of [-8, 8]; 4.7e-7 read
// back through gelu.fwd on llvmpipe, test/kernels/gelu.test.ts). A&S 7.1.26 would be 1.5e-7 exact, 6e-7 in f32.
// The same function is in gelu.fwd.wgsl and matmul.fwd.wgsl (test/kernels/gelu.test.ts checks the copies agree).
fn erf_f32(v: f32) -> f32 {
  let x = clamp(v, -4.0, 4.0);
  let x2 = x * x;
  var p = -2.72614225801306e-10;
  p = fma(p, x2, 2.77068142495902e-08);
  p = fma(p, x2, -2.10102402082508e-06);
  p = fma(p, x2, -5.69250639462346e-05);
  p = fma(p, x2, -7.34990630326855e-04);
  p = fma(p, x2, -2.95459980854025e-03);
  p = fma(p, x2, -1.60960333262415e-02);
  var q = -1.45660718464996e-05;
  q = fma(q, x2, -2.13374055278905e-04);
  q = fma(q, x2, -1.68282697438203e-03);
  q = fma(q, x2, -7.37332916720468e-03);
  q = fma(q, x2, -1.42647390514189e-02);
  return x * p / q;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let v = x[i];
  var g: f32;
  if (params.erf != 0u) {
    let vc = clamp(v, -10.0, 10.0); // exp(-50) x 10 = 2e-21: the density term is 0 in f32 beyond, and x^2 stays finite
    g = 0.5 * (1.0 + erf_f32(v * INV_SQRT_2)) + vc * exp(-0.5 * vc * vc) * INV_SQRT_2PI;
  } else {
    let t = tanh(clamp(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v), -15.0, 15.0));
    g = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
  }
  var d = dy[i] * g;
  if (params.accumulate != 0u) { d = d + dx[i]; }
  dx[i] = d;
}
