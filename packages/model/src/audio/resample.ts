// Rational polyphase resampling with a Kaiser-windowed sinc (the design of resampy / libsamplerate's sinc
// converters, written out): output sample n sits at input time t = n * from / to; it is the sum of the input
// samples within `zeros` zero crossings of a sinc low-pass at the lower of the two Nyquist frequencies (times
// `rolloff`), weighted by a Kaiser window. For from / to = M / L in lowest terms the fractional part of t takes only
// L values, so the L filter phases are computed once per rate pair and each output sample is one dot product
// (44.1 -> 16 kHz: 160 phases of 200 taps; 48 -> 16 kHz: 1 phase of 216 taps).

/**
 * Filter settings. The defaults at 16 kHz out: flat to 0.1 dB up to 7.5 kHz, tones at 8.5 kHz -48 dB and from 9 kHz
 * up below -90 dB: at least wave-resampler's sinc + Butterworth at every tone (test/model/resample.test.ts).
 */
export interface PolyphaseOptions {
  /** Zero crossings of the sinc on each side, at the lower rate (the filter's half length). */
  zeros?: number;
  /** Cutoff as a fraction of the lower Nyquist frequency. */
  rolloff?: number;
  /** Kaiser window shape: larger trades a wider transition band for a deeper stopband (8.6: about -90 dB sidelobes). */
  beta?: number;
}

interface Filter {
  L: number;
  M: number;
  /** Input samples before t that the filter reaches (taps = 2 * half). */
  half: number;
  taps: number;
  /** [L, taps]: phase p holds the weights of input samples floor(t) - half + 1 .. floor(t) + half for frac(t) = p / L. */
  phases: Float32Array;
}

/** Filters kept, the oldest dropped first: a process meets a few rate pairs, a fuzzer thousands. */
const MAX_FILTERS = 16;
const filters = new Map<string, Filter>();

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for the betas used). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

function design(from: number, to: number, o: Required<PolyphaseOptions>): Filter {
  const key = `${from}:${to}:${o.zeros}:${o.rolloff}:${o.beta}`;
  const cached = filters.get(key);
  if (cached) return cached;
  const g = gcd(from, to);
  const [L, M] = [to / g, from / g];
  const s = Math.min(1, to / from) * o.rolloff; // cutoff in cycles per input sample, times 2
  const reach = o.zeros / Math.min(1, to / from); // half length in input samples
  const half = Math.ceil(reach);
  const taps = 2 * half;
  const weights = new Float64Array(L * taps);
  const i0b = besselI0(o.beta);
  for (let p = 0; p < L; p++) {
    const frac = p / L;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const d = j - half + 1 - frac; // input sample position minus t
      const u = d / reach;
      let w = 0;
      if (Math.abs(u) < 1) {
        const x = Math.PI * s * d;
        w = (d === 0 ? 1 : Math.sin(x) / x) * s * (besselI0(o.beta * Math.sqrt(1 - u * u)) / i0b);
      }
      weights[p * taps + j] = w;
      sum += w;
    }
    // unit DC gain in every phase (removes the small ripple a truncated kernel leaves at 0 Hz)
    for (let j = 0; j < taps; j++) weights[p * taps + j]! /= sum;
  }
  const f = { L, M, half, taps, phases: Float32Array.from(weights) };
  if (filters.size >= MAX_FILTERS) filters.delete(filters.keys().next().value!);
  filters.set(key, f);
  return f;
}

/** The weights of the filter for `from` -> `to` Hz at the default zeros (L phases x taps; 12 bytes each while designed). */
export function polyphaseWeights(from: number, to: number, zeros = 36): number {
  return (to / gcd(from, to)) * 2 * Math.ceil(zeros / Math.min(1, to / from));
}

/** Resamples mono audio from `from` Hz to `to` Hz (both integers); the input before 0 and after its end is silence. */
export function resamplePolyphase(x: Float32Array, from: number, to: number, options: PolyphaseOptions = {}): Float32Array {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from > 0 && to > 0))
    throw new RangeError(`sample rates must be positive integers, got ${from} and ${to}`);
  if (from === to) return x;
  const f = design(from, to, { zeros: options.zeros ?? 36, rolloff: options.rolloff ?? 1, beta: options.beta ?? 8.6 });
  const { L, M, half, taps, phases } = f;
  const n = Math.ceil((x.length * L) / M);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const num = i * M; // t = num / L input samples
    const base = Math.floor(num / L);
    const p = num - base * L;
    const k0 = base - half + 1;
    const w = p * taps;
    let acc = 0;
    if (k0 >= 0 && k0 + taps <= x.length) {
      for (let j = 0; j < taps; j++) acc += phases[w + j]! * x[k0 + j]!;
    } else {
      for (let j = 0; j < taps; j++) {
        const k = k0 + j;
        if (k >= 0 && k < x.length) acc += phases[w + j]! * x[k]!;
      }
    }
    y[i] = acc;
  }
  return y;
}
