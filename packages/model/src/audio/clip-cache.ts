// Decoding once for every audio encoder: loadAudio's result (mono float32 at the encoders' rate) kept on disk,
// keyed by the file's path, size and modification time and the rate, so the extraction with the next encoder
// (logmel, then whisper, then ast, ...) reads the samples back instead of decoding and resampling again. Opt-in
// (extract --audio-cache <dir>): 16 kHz float32 is 64 KB per second of audio (MELD: about 3 GB).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../io.ts';
import { loadAudio, TARGET_SAMPLE_RATE, type LoadAudioOptions } from './decode.ts';

/** The cache file of a clip: <dir>/<2 hex>/<sha256 of path, size, mtime, rate, length cap>.f32 (raw little-endian float32). */
export function clipCacheFile(dir: string, file: string, sampleRate: number, maxSeconds?: number): string | null {
  let st: Stats;
  try {
    st = statSync(file);
  } catch {
    return null; // missing: loadAudio reports it
  }
  const key = createHash('sha256')
    .update(JSON.stringify([resolve(file), st.size, st.mtimeMs, sampleRate, maxSeconds ?? null]))
    .digest('hex');
  return join(dir, key.slice(0, 2), `${key}.f32`);
}

/** loadAudio, through the clip cache in `dir` (stored after the first decode; errors are not cached). */
export function loadAudioCached(file: string, dir: string, options: LoadAudioOptions = {}): { samples: Float32Array; cached: boolean } {
  const rate = options.sampleRate ?? TARGET_SAMPLE_RATE;
  const path = clipCacheFile(dir, file, rate, options.maxSeconds);
  if (path && existsSync(path)) {
    const b = readFileSync(path);
    if (b.length % 4 === 0 && b.length > 0)
      return { samples: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)), cached: true };
  }
  const samples = loadAudio(file, options);
  if (path) writeFileAtomic(path, new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
  return { samples, cached: false };
}
