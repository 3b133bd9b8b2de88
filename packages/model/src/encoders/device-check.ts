// A network encoder on WebGPU is checked against the CPU once before its features are used. onnxruntime-node's
// WebGPU execution provider is not always right: on Mesa's software adapter (lavapipe via Dawn) the real Whisper
// tiny.en encoder agrees with the CPU for batches of 1 and 2 clips, but in a batch of 4 clips 3 and 4 come out wrong
// (18989 of 38400 tokens, off by up to 3.1 on values up to 3.1), while all-MiniLM-L6-v2 and the tiny random test models
// agree to rounding. So the first batch a checked encoder gets (extract's --batch-size, predict's 16 utterances: the
// largest it will get) is encoded on both devices, and the webgpu encoder is kept only when every element agrees:
//
//   |webgpu - cpu| <= DEVICE_TOL.atol + DEVICE_TOL.rtol * |cpu|        (atol 1e-3, rtol 1e-2)
//
// Why that tolerance: the rounding between the two providers, measured on lavapipe, is at most 4.8e-6 for
// all-MiniLM-L6-v2 (3 texts, 512 tokens, largest |token| 6.1), 1.0e-5 for whisper-tiny.en's layer 2 (2 clips, largest
// |token| 2.9), 7.2e-7 on the tiny random bert / ast / whisper: the tolerance leaves a bigger model 100x that, and a
// wrong kernel is off by O(1). Not checked: later batches of another shape (bert's longer texts, a smaller last batch).
//
// On a disagreement the policy decides: 'refuse' (an explicit --device webgpu) throws EncoderDeviceError naming the
// encoder, the device, the worst element and the fix; 'cpu' (--device auto chose webgpu) moves the encoder to the cpu
// (that batch's features are the CPU's) and tells onFallback why. The verdict is kept per (encoder spec, device) for
// the process: another encoder of the same spec is not checked again (refused, or created on the cpu, at once).

import { EncoderDeviceError, type DeviceCheckPolicy, type EncoderDevice } from './device.ts';
import type { AudioEncoder, EncodedBatch, TextEncoder } from './types.ts';

export const DEVICE_TOL = { atol: 1e-3, rtol: 1e-2 } as const;

/** How a webgpu encoder's first batch compares with the CPU's. */
export interface DeviceVerdict {
  spec: string;
  device: EncoderDevice;
  ok: boolean;
  /** Elements outside the tolerance, of `total`. */
  bad: number;
  total: number;
  /** The element furthest outside (or least inside) the tolerance: flat index, [b, t, c], both values. */
  worst: { index: number; at: [number, number, number]; got: number; want: number; diff: number };
  /** Why the shapes or masks differ, when they do (then bad = total). */
  shape?: string;
  /** Items in the batch compared. */
  batch: number;
  /** Wall time of the webgpu encode of that batch, and of the check's own work (the CPU encoder's creation and encode). */
  encodeMs: number;
  checkMs: number;
}

/** Elementwise |got - want| <= atol + rtol |want| over [B, T, C] tokens; masks and shapes must be equal. */
export function compareEncoded(
  got: EncodedBatch,
  want: EncodedBatch,
  tol: { atol: number; rtol: number } = DEVICE_TOL,
): Omit<DeviceVerdict, 'spec' | 'device' | 'batch' | 'encodeMs' | 'checkMs'> {
  const total = want.tokens.length;
  const worst: DeviceVerdict['worst'] = { index: -1, at: [0, 0, 0], got: NaN, want: NaN, diff: 0 };
  const dims = (e: EncodedBatch) => `${e.B}x${e.T}x${e.C}`;
  if (dims(got) !== dims(want) || got.lengths.some((n, b) => n !== want.lengths[b])) {
    return {
      ok: false,
      bad: total,
      total,
      worst,
      shape: `webgpu gave ${dims(got)} tokens of lengths [${[...got.lengths]}], cpu ${dims(want)} of [${[...want.lengths]}]`,
    };
  }
  let bad = 0;
  let worstScore = -1;
  for (let i = 0; i < total; i++) {
    const g = got.tokens[i]!;
    const w = want.tokens[i]!;
    const d = Math.abs(g - w);
    const ratio = d / (tol.atol + tol.rtol * Math.abs(w)); // > 1: outside the tolerance
    const score = Number.isNaN(ratio) ? Infinity : ratio; // NaN counts as outside
    if (score > 1) bad++;
    if (score > worstScore) {
      worstScore = score;
      Object.assign(worst, { index: i, got: g, want: w, diff: d });
    }
  }
  if (worst.index >= 0) {
    const { T, C } = want;
    worst.at = [Math.floor(worst.index / (T * C)), Math.floor(worst.index / C) % T, worst.index % C];
  }
  return { ok: bad === 0, bad, total, worst };
}

const verdicts = new Map<string, DeviceVerdict>();

/** The cached verdict for (spec, device), if this process checked it. */
export function deviceVerdict(spec: string, device: EncoderDevice): DeviceVerdict | undefined {
  return verdicts.get(`${spec}\n${device}`);
}

/** Forgets every verdict (tests). */
export function clearDeviceVerdicts(): void {
  verdicts.clear();
}

function explain(v: DeviceVerdict): string {
  if (v.shape) return v.shape;
  const w = v.worst;
  return (
    `${v.bad} of ${v.total} elements outside |webgpu - cpu| <= ${DEVICE_TOL.atol} + ${DEVICE_TOL.rtol} |cpu|; ` +
    `worst at [${w.at.join(', ')}] (element ${w.index}): webgpu ${fmt(w.got)}, cpu ${fmt(w.want)} (|diff| ${fmt(w.diff)})`
  );
}
const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(3)).toString() : String(x));

/**
 * `create(device)`, checked on `device` (see the top of this file): the encoder returned runs its first encode() on
 * both devices and compares; after that it is the webgpu encoder, or (policy 'cpu', on a disagreement) the CPU one.
 * On cpu, or without a policy, the encoder is returned unchecked. A (spec, device) already found wrong in this process
 * is refused, or created on the cpu, at once.
 */
export async function checkOnDevice<E extends TextEncoder | AudioEncoder>(
  spec: string,
  device: EncoderDevice,
  policy: DeviceCheckPolicy | undefined,
  create: (device: EncoderDevice) => Promise<E>,
  onFallback?: (why: string) => void,
): Promise<E> {
  if (device === 'cpu' || !policy) return create(device);
  const refuse = (v: DeviceVerdict) =>
    new EncoderDeviceError(
      `encoder '${spec}' on --device ${device} disagrees with the CPU on its first batch (${v.batch} items): ${explain(v)}. ` +
        `onnxruntime-node's ${device} execution provider computes this model wrongly here, so its features would be wrong; ` +
        `run with --device cpu (or --device auto, which falls back to the CPU)`,
    );
  const fallback = (v: DeviceVerdict) =>
    onFallback?.(`encoder '${spec}': ${device} disagrees with the CPU on the first batch (${explain(v)}); it runs on the cpu instead`);
  const known = deviceVerdict(spec, device);
  if (known?.ok) return create(device);
  if (known) {
    if (policy === 'refuse') throw refuse(known);
    fallback(known);
    return create('cpu');
  }
  let current: E = await create(device);
  let checked = false;
  let refused: EncoderDeviceError | null = null;
  const encode = async (input: readonly (string | Float32Array)[]): Promise<EncodedBatch> => {
    if (refused) throw refused;
    if (checked) return encodeWith(current, input);
    const t0 = performance.now();
    const got = await encodeWith(current, input);
    const t1 = performance.now();
    const cpu = await create('cpu');
    let want: EncodedBatch;
    try {
      want = await encodeWith(cpu, input);
    } catch (err) {
      await cpu.dispose?.();
      throw err;
    }
    const v: DeviceVerdict = {
      spec,
      device,
      batch: got.B,
      ...compareEncoded(got, want),
      encodeMs: t1 - t0,
      checkMs: performance.now() - t1,
    };
    verdicts.set(`${spec}\n${device}`, v);
    checked = true;
    if (v.ok) {
      await cpu.dispose?.();
      return got;
    }
    if (policy === 'refuse') {
      await cpu.dispose?.();
      refused = refuse(v);
      throw refused;
    }
    await current.dispose?.();
    current = cpu;
    fallback(v);
    return want;
  };
  return { ...current, encode, dispose: () => current.dispose?.() } as E;
}

/** A text encoder's texts or an audio encoder's clips: the wrapper passes on whatever its caller gave. */
function encodeWith(enc: TextEncoder | AudioEncoder, input: readonly (string | Float32Array)[]): Promise<EncodedBatch> {
  return (enc as unknown as { encode(x: readonly (string | Float32Array)[]): Promise<EncodedBatch> }).encode(input);
}
