// Encoders by spec: text 'hash' | 'bert[:<model id or folder>]', audio 'logmel' | 'speech' | 'ast[:<model id or folder>]'
// | 'whisper[:<model id or folder>][@<layer>|@all][+full]'.

import { createHashEncoder, HASH_DIM } from './hash.ts';
import { createLogmelEncoder } from './logmel.ts';
import type { AudioEncoder, TextEncoder } from './types.ts';
import type { EncoderDevice, EncoderOptions } from './device.ts';
import { checkOnDevice } from './device-check.ts';

export * from './types.ts';
export * from './settings.ts';
export * from './device.ts';
export { checkOnDevice, compareEncoded, deviceVerdict, clearDeviceVerdicts, DEVICE_TOL, type DeviceVerdict } from './device-check.ts';
export { createHashEncoder, hashVector, loadBertTokenizer, HASH_DIM } from './hash.ts';
export { createLogmelEncoder, createLogmelFrontEnd, patchTokens, LOGMEL_BINS } from './logmel.ts';
export {
  parseWhisperSpec,
  coveredFrames,
  poolFrames,
  slicedWindow,
  DEFAULT_WHISPER,
  DEFAULT_WHISPER_LAYER,
  DEFAULT_WHISPER_WINDOW,
  SLICE_STEP,
  WHISPER_POOL,
  type WhisperWindow,
} from './whisper.ts';
export { locateModel } from './transformers.ts';

export class EncoderSpecError extends Error {
  override name = 'EncoderSpecError';
}

export const TEXT_ENCODERS = ['hash', 'bert[:<model id or folder>]'] as const;
export const AUDIO_ENCODERS = [
  'logmel',
  'speech',
  'ast[:<model id or folder>]',
  'whisper[:<model id or folder>][@<layer>|@all][+full]',
] as const;

/** Encoders whose network runs on `options.device` (bert, ast, whisper); the others run in JS on the CPU. */
export function usesDevice(spec: string): boolean {
  return /^(bert|ast|whisper)(:|@|\+|$)/.test(spec);
}

/** An encoder by spec on options.device; on webgpu with options.check, checked against the CPU first (./device-check.ts). */
export async function createTextEncoder(spec: string, options: EncoderOptions = {}): Promise<TextEncoder> {
  if (options.device !== 'webgpu' || !options.check || !usesDevice(spec)) return textEncoderOn(spec, options.device);
  return checkOnDevice(spec, options.device, options.check, (device) => textEncoderOn(spec, device), options.onFallback);
}

export async function createAudioEncoder(spec: string, options: EncoderOptions = {}): Promise<AudioEncoder> {
  if (options.device !== 'webgpu' || !options.check || !usesDevice(spec)) return audioEncoderOn(spec, options.device);
  return checkOnDevice(spec, options.device, options.check, (device) => audioEncoderOn(spec, device), options.onFallback);
}

async function textEncoderOn(spec: string, device: EncoderDevice | undefined): Promise<TextEncoder> {
  const [kind, ...rest] = spec.split(':');
  const arg = rest.join(':');
  if (kind === 'hash') {
    const dim = arg ? Number(arg) : HASH_DIM;
    if (!Number.isInteger(dim) || dim < 2)
      throw new EncoderSpecError(`text encoder '${spec}': the width after 'hash:' must be an integer >= 2`);
    return createHashEncoder(dim);
  }
  if (kind === 'bert') {
    const { createBertEncoder } = await import('./transformers.ts');
    return createBertEncoder(arg || undefined, { device });
  }
  throw new EncoderSpecError(`unknown text encoder '${spec}': use one of ${TEXT_ENCODERS.join(', ')}`);
}

async function audioEncoderOn(spec: string, device: EncoderDevice | undefined): Promise<AudioEncoder> {
  const [kind, ...rest] = spec.split(':');
  const arg = rest.join(':');
  if (kind === 'logmel' && !arg) return createLogmelEncoder();
  if (kind === 'speech') {
    const { createSpeechEmbeddingEncoder } = await import('./speech-embedding.ts');
    return createSpeechEmbeddingEncoder(arg || undefined);
  }
  if (kind === 'ast') {
    const { createAstEncoder } = await import('./transformers.ts');
    return createAstEncoder(arg || undefined, { device });
  }
  if (kind === 'whisper' || kind.startsWith('whisper@') || kind.startsWith('whisper+')) {
    const { createWhisperEncoder } = await import('./whisper.ts');
    return createWhisperEncoder(kind === 'whisper' ? arg : spec.slice('whisper'.length), { device });
  }
  throw new EncoderSpecError(`unknown audio encoder '${spec}': use one of ${AUDIO_ENCODERS.join(', ')}`);
}
