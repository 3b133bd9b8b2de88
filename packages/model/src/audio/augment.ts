// Audio augmentation of the train split at extraction (`emofuse extract --augment speed:0.9,speed:1.1,noise:20`):
// every train utterance also gets one extra utterance per augmentation, made from its decoded 16 kHz clip.
//
//   speed:F    Kaldi / torchaudio speed perturbation: the clip read as if sampled at 16000 * F Hz and resampled to
//              16 kHz (./resample.ts), so tempo and pitch change together and the clip lasts 1 / F as long
//   noise:SNR  white Gaussian noise at SNR dB over the clip's active signal (its 20 ms frames within 40 dB of the
//              loudest), the same noise for the same utterance and augmentation (seeded by both)
//
// An augmented copy is its own utterance `<id>~speed0.9` and its own pseudo-speaker `<speaker>~speed0.9` (a speed
// change moves the pitch, so --speaker-norm must keep its statistics apart); its text and label are the original's.
// Dev and test are never augmented. `~` cannot occur in an id of a corpus we read: a manifest with one is refused.

import { mulberry32 } from '@emofuse/kernels';
import { DataError } from '../errors.ts';
import { gaussian } from '../random.ts';
import { resamplePolyphase } from './resample.ts';

/** Bumped whenever an augmentation's samples change: a cache records it, and resuming with another version is refused. */
export const AUGMENT_VERSION = 1;
/** What separates an utterance's id (and speaker) from its augmentation's name. */
export const AUGMENT_SEP = '~';

export type Augmentation = { kind: 'speed'; factor: number } | { kind: 'noise'; snrDb: number };

/** The accepted forms, for messages. */
export const AUGMENT_FORMS = 'speed:F (F in [0.5, 2], e.g. speed:0.9) or noise:SNR (dB in [-10, 60], e.g. noise:20)';

/** A bad --augment list (a DataError: the CLI exits 2 with its message). */
export class AugmentError extends DataError {
  override name = 'AugmentError';
}

/** 'speed:0.9,speed:1.1,noise:20' -> the augmentations, in order; a bad or repeated item is refused, named. */
export function parseAugmentList(spec: string): Augmentation[] {
  const out: Augmentation[] = [];
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    const m = /^(speed|noise):([-+]?\d+(?:\.\d+)?)$/.exec(item);
    const value = m ? Number(m[2]) : NaN;
    const a: Augmentation | null =
      m?.[1] === 'speed' && value >= 0.5 && value <= 2 && value !== 1
        ? { kind: 'speed', factor: value }
        : m?.[1] === 'noise' && value >= -10 && value <= 60
          ? { kind: 'noise', snrDb: value }
          : null;
    if (!a) throw new AugmentError(`--augment: '${item}' is not an augmentation; accepted: ${AUGMENT_FORMS}, comma-separated`);
    if (out.some((b) => augmentName(b) === augmentName(a))) throw new AugmentError(`--augment: '${item}' is given twice`);
    out.push(a);
  }
  return out;
}

/** The suffix an augmentation gives ids and speakers: 'speed0.9', 'noise20'. */
export function augmentName(a: Augmentation): string {
  return a.kind === 'speed' ? `speed${a.factor}` : `noise${a.snrDb}`;
}

/** The list as --augment takes it (what index.json records): 'speed:0.9', 'noise:20'. */
export function augmentSpec(a: Augmentation): string {
  return a.kind === 'speed' ? `speed:${a.factor}` : `noise:${a.snrDb}`;
}

/** The augmented copy's id or speaker: `<x>~<name>`. */
export function augmentedName(x: string, a: Augmentation): string {
  return `${x}${AUGMENT_SEP}${augmentName(a)}`;
}

/** The original's id or speaker of an augmented one ('actor01~speed0.9' -> 'actor01'); an original's is itself. */
export function originalName(x: string): string {
  const at = x.indexOf(AUGMENT_SEP);
  return at < 0 ? x : x.slice(0, at);
}

export function isAugmented(id: string): boolean {
  return id.includes(AUGMENT_SEP);
}

const RATE = 16000;

/** Speed perturbation: `x` (16 kHz) read at 16000 * factor Hz, resampled to 16 kHz: 1 / factor as long, pitch times factor. */
export function speedPerturb(x: Float32Array, factor: number): Float32Array {
  return resamplePolyphase(x, Math.round(RATE * factor), RATE);
}

/** 20 ms frames of 16 kHz audio: what "active" is measured over. */
const FRAME = 320;
/** A frame is active when its energy is within this many dB of the loudest frame's. */
const ACTIVE_DB = 40;

/** The mean power of the clip's active frames (those within ACTIVE_DB of the loudest); 0 for silence. */
export function activePower(x: Float32Array): number {
  const energies: number[] = [];
  for (let s = 0; s < x.length; s += FRAME) {
    let e = 0;
    const end = Math.min(x.length, s + FRAME);
    for (let i = s; i < end; i++) e += x[i]! * x[i]!;
    energies.push(e / (end - s));
  }
  const loudest = Math.max(0, ...energies);
  const floor = loudest * 10 ** (-ACTIVE_DB / 10);
  let sum = 0;
  let n = 0;
  energies.forEach((e, f) => {
    if (e < floor || e === 0) return;
    const len = Math.min(x.length, (f + 1) * FRAME) - f * FRAME;
    sum += e * len;
    n += len;
  });
  return n ? sum / n : 0;
}

/** 32-bit FNV-1a of a string: the noise seed of (utterance id, augmentation). */
function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `x` plus white Gaussian noise at `snrDb` over its active signal, drawn from a stream seeded by `key`. */
export function addNoise(x: Float32Array, snrDb: number, key: string): Float32Array {
  const sigma = Math.sqrt(activePower(x) / 10 ** (snrDb / 10));
  const g = gaussian(mulberry32(seedOf(key)));
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! + sigma * g();
  return y;
}

/** The augmented clip of utterance `id` (its 16 kHz samples `x`). */
export function augmentClip(x: Float32Array, a: Augmentation, id: string): Float32Array {
  return a.kind === 'speed' ? speedPerturb(x, a.factor) : addNoise(x, a.snrDb, augmentedName(id, a));
}
