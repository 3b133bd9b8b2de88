// CPU reference for GELU, float64, in its two forms (same formulas as shaders/gelu.*.wgsl, without the clamp):
//   'tanh' (GPT-2's "gelu_new", the fusion model's):  y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   'erf'  (exact, BERT's "gelu"):                     y = 0.5 x (1 + erf(x / sqrt(2)))
//          y' = 0.5 (1 + erf(x / sqrt(2))) + x exp(-x^2 / 2) / sqrt(2 pi)

/** Which GELU: the tanh approximation or the exact erf form. */
export type GeluForm = 'tanh' | 'erf';

export const GELU_FORMS: readonly GeluForm[] = ['tanh', 'erf'];

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * erf(x) in float64, to 1.2e-15 relative (JavaScript has no Math.erf). Abramowitz and Stegun (1964):
 *   |x| < 2.5:  7.1.6, the series erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)), every term
 *               positive (no cancellation), summed until a term no longer changes the sum (at most ~70 terms);
 *   |x| >= 2.5: 7.1.14, erfc(x) = exp(-x^2) / sqrt(pi) * 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + 2 / (x + ...))))),
 *               the continued fraction evaluated by the modified Lentz method (Numerical Recipes, 3rd ed., 5.2),
 *               erf = 1 - erfc (erfc < 4.1e-4 there, so the subtraction loses nothing).
 * Measured against C's erf (Python math.erf) on 160,001 points of [-8, 8]: max 1.1e-15 relative (test/ref/gelu.grad.test.ts).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (2 * a * a) / (2 * n + 1);
      const next = sum + term;
      if (next === sum) break;
      sum = next;
    }
    return Math.sign(x) * TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
  }
  if (a > 6) return Math.sign(x); // erfc(6) = 2.2e-17: 1 in float64
  // Lentz: f = b0 + a1 / (b1 + a2 / (b2 + ...)) with b_j = x, a_j = j / 2, f = x + (1/2) / (x + 1 / (x + ...))
  const TINY = 1e-300;
  let f = a;
  let C = f;
  let D = 0;
  for (let j = 1; j < 500; j++) {
    const aj = j / 2;
    D = a + aj * D;
    D = D === 0 ? TINY : D;
    C = a + aj / C;
    C = C === 0 ? TINY : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function geluAt(v: number, form: GeluForm): number {
  if (form === 'erf') return 0.5 * v * (1 + erf(v / Math.SQRT2));
  return 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
}

function geluGradAt(v: number, form: GeluForm): number {
  if (form === 'erf') return 0.5 * (1 + erf(v / Math.SQRT2)) + v * Math.exp(-0.5 * v * v) * INV_SQRT_2PI;
  const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v);
}

export function geluForward(x: ArrayLike<number>, form: GeluForm = 'tanh'): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = geluAt(x[i]!, form);
  return y;
}

export function geluBackward(x: ArrayLike<number>, dy: ArrayLike<number>, form: GeluForm = 'tanh'): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i]! * geluGradAt(x[i]!, form);
  return dx;
}
