// Where the transformers.js / onnxruntime encoders run: 'cpu' (onnxruntime-node's CPU EP) or 'webgpu'
// (onnxruntime-node's WebGPU EP through Dawn, what transformers.js uses for `device: 'webgpu'`). 'auto' picks
// webgpu on a hardware GPU adapter and cpu on a software one (llvmpipe / lavapipe: the CPU EP is faster there)
// or none. The WebGPU provider is not always right. Measured on lavapipe: it agrees with the CPU to float rounding
// on the tiny random test models (at most 7.2e-7, test/model/encoder-device.test.ts) and all-MiniLM-L6-v2 (4.8e-6),
// and on the real Whisper tiny.en for batches of 1 or 2 clips (1.0e-5), but in a batch of 4 clips whisper-tiny.en's
// clips 3 and 4 come out wrong (off by up to 3.1). So extract and predict check a network encoder on webgpu against
// the CPU on its first batch (./device-check.ts): an explicit --device webgpu is refused when they disagree (exit 2),
// --device auto falls back to the CPU and says why.

import { Gpu } from '@emofuse/kernels';

export type EncoderDevice = 'cpu' | 'webgpu';
export const ENCODER_DEVICES = ['cpu', 'webgpu', 'auto'] as const;

/** What a webgpu encoder that disagrees with the CPU does: 'refuse' throws EncoderDeviceError, 'cpu' runs on the cpu. */
export type DeviceCheckPolicy = 'refuse' | 'cpu';

export interface EncoderOptions {
  /** Where bert, ast and whisper run (default cpu). */
  device?: EncoderDevice;
  /** On webgpu, check the encoder against the CPU once before it is used (./device-check.ts). Absent: unchecked
   * (bench extract, which compares the two itself). */
  check?: DeviceCheckPolicy;
  /** With check 'cpu': told why the encoder fell back to the CPU. */
  onFallback?: (why: string) => void;
}

export class EncoderDeviceError extends Error {
  override name = 'EncoderDeviceError';
}

/** The device for --device cpu|webgpu|auto, why (auto probes the WebGPU adapter once), and what a webgpu encoder
 * that disagrees with the CPU does: refused when webgpu was asked for, the CPU when auto chose it. */
export async function resolveEncoderDevice(choice: string): Promise<{ device: EncoderDevice; reason: string; check: DeviceCheckPolicy }> {
  if (choice === 'cpu' || choice === 'webgpu') return { device: choice, reason: `--device ${choice}`, check: 'refuse' };
  if (choice !== 'auto') throw new EncoderDeviceError(`--device must be one of ${ENCODER_DEVICES.join(', ')}, got '${choice}'`);
  let gpu: Gpu | undefined;
  try {
    gpu = await Gpu.create();
    const a = gpu.adapter;
    const name = a.device || a.description;
    return a.isSoftware
      ? { device: 'cpu', reason: `software adapter ${name}: the CPU is faster`, check: 'cpu' }
      : { device: 'webgpu', reason: `hardware GPU adapter ${name}; checked against the CPU before use`, check: 'cpu' };
  } catch (err) {
    return { device: 'cpu', reason: `no WebGPU adapter (${(err as Error).message.split('\n')[0]})`, check: 'cpu' };
  } finally {
    await gpu?.destroy();
  }
}
