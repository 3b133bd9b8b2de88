// erf for the exact (BERT) form of GELU, one function shared by gelu.fwd, gelu.bwd and matmul.fwd (its fused gelu):
// their ops append this file to their source (packages/kernels/src/ops/gelu.ts ERF_WGSL); WGSL has no erf builtin
// and no includes. erf(x) = x P(x^2) / Q(x^2) on [-4, 4], +-1 beyond (1 - erf(4) = 1.5e-8): the rational
// approximation of XLA's ErfImpl32 (also Eigen's generic_fast_erf_float). Only multiply-add and one divide, no exp.
// |error| <= 6.5e-8 in exact arithmetic, about 4.5e-7 evaluated in f32 (measured against C's erf on 2M points of
// [-8, 8]; 4.7e-7 read back through gelu.fwd on llvmpipe, test/kernels/gelu.test.ts). A&S 7.1.26 would be 1.5e-7
// exact, 6e-7 in f32.
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
