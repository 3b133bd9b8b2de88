// Where the transformers.js / onnxruntime encoders run: 'cpu' (onnxruntime-node's CPU EP) or 'webgpu'
// (onnxruntime-node's WebGPU EP through Dawn, what transformers.js uses for `device: 'webgpu'`). 'auto' picks
// webgpu on a hardware GPU adapter and cpu on a software one (llvmpipe / lavapipe: the CPU EP is faster there)
// or none. The features agree with the CPU's to float rounding (test/model/encoder-device.test.ts).

import { Gpu } from '@emofuse/kernels';

export type EncoderDevice = 'cpu' | 'webgpu';
export const ENCODER_DEVICES = ['cpu', 'webgpu', 'auto'] as const;

export interface EncoderOptions {
  /** Where bert, ast and whisper run (default cpu). */
  device?: EncoderDevice;
}

export class EncoderDeviceError extends Error {
  override name = 'EncoderDeviceError';
}

/** The device for --device cpu|webgpu|auto, and why (auto probes the WebGPU adapter once). */
export async function resolveEncoderDevice(choice: string): Promise<{ device: EncoderDevice; reason: string }> {
  if (choice === 'cpu' || choice === 'webgpu') return { device: choice, reason: `--device ${choice}` };
  if (choice !== 'auto') throw new EncoderDeviceError(`--device must be one of ${ENCODER_DEVICES.join(', ')}, got '${choice}'`);
  let gpu: Gpu | undefined;
  try {
    gpu = await Gpu.create();
    const a = gpu.adapter;
    const name = a.device || a.description;
    return a.isSoftware ? { device: 'cpu', reason: `software adapter ${name}: the CPU is faster` } : { device: 'webgpu', reason: `hardware GPU adapter ${name}` };
  } catch (err) {
    return { device: 'cpu', reason: `no WebGPU adapter (${(err as Error).message.split('\n')[0]})` };
  } finally {
    await gpu?.destroy();
  }
}
