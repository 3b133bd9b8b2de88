// Audio decoding, down-mix and resampling: WAVs written by `wavefile` in every encoding, tones across the new
// Nyquist, and files that are broken in each way extraction must report.
import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import wavefilePkg from 'wavefile';
import { AudioError, decodeWav, loadAudio, resampleTo, downmix } from '../../packages/model/src/audio/index.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const assets = process.env.EMOFUSE_ASSETS ?? join(import.meta.dirname, '../../../shared/assets');

function tone(freq: number, rate: number, seconds: number, amp = 0.5): Float64Array {
  const n = Math.round(rate * seconds);
  return Float64Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}
function rms(x: Float32Array, skip = 400): number {
  let s = 0;
  for (let i = skip; i < x.length - skip; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / (x.length - 2 * skip));
}
/** Integer sample values for a bit depth from floats in [-1, 1]. */
function quantise(x: Float64Array, bitDepth: string): number[] {
  if (bitDepth === '32f' || bitDepth === '64') return Array.from(x);
  const bits = Number(bitDepth);
  const scale = 2 ** (bits - 1);
  return Array.from(x, (v) => Math.round(v * (scale - 1)) + (bits === 8 ? 128 : 0));
}
function wavBytes(channels: Float64Array[], rate: number, bitDepth: string): Uint8Array {
  const wav = new WaveFile();
  const data = channels.length === 1 ? quantise(channels[0]!, bitDepth) : channels.map((c) => quantise(c, bitDepth));
  wav.fromScratch(channels.length, rate, bitDepth, data);
  return wav.toBuffer();
}

describe('decodeWav', () => {
  for (const bitDepth of ['8', '16', '24', '32', '32f', '64']) {
    it(`decodes ${bitDepth}-bit stereo to floats in [-1, 1]`, () => {
      const left = tone(440, 8000, 0.1, 0.5);
      const right = tone(440, 8000, 0.1, -0.25);
      const decoded = decodeWav(wavBytes([left, right], 8000, bitDepth), 'x.wav');
      expect(decoded.sampleRate).toBe(8000);
      expect(decoded.channels).toHaveLength(2);
      const tol = bitDepth === '8' ? 1 / 64 : 1e-4;
      for (let i = 0; i < left.length; i += 37) {
        expect(Math.abs(decoded.channels[0]![i]! - left[i]!)).toBeLessThan(tol);
        expect(Math.abs(decoded.channels[1]![i]! - right[i]!)).toBeLessThan(tol);
      }
    });
  }
  it('down-mixes channels by averaging', () => {
    const mono = downmix([Float32Array.of(1, 0.5), Float32Array.of(0, -0.5), Float32Array.of(0.5, 0)]);
    expect(Array.from(mono)).toEqual([0.5, 0]);
  });
});

describe('resampleTo (anti-aliased)', () => {
  const from = 44_100;
  it('keeps a 1 kHz and a 6 kHz tone when going 44.1 kHz -> 16 kHz', () => {
    for (const f of [1000, 6000]) {
      const y = resampleTo(Float32Array.from(tone(f, from, 0.5)), from, 16_000);
      expect(y.length).toBe(8000);
      expect(rms(y) / (0.5 / Math.SQRT2)).toBeGreaterThan(0.95);
    }
  });
  it('removes a 10 kHz and a 15 kHz tone (above the new 8 kHz Nyquist) instead of aliasing them', () => {
    for (const f of [10_000, 15_000]) {
      const y = resampleTo(Float32Array.from(tone(f, from, 0.5)), from, 16_000);
      // Without a low-pass these would alias to 6 kHz / 1 kHz at full amplitude; demand at least 60 dB less.
      expect(rms(y) / (0.5 / Math.SQRT2)).toBeLessThan(1e-3);
    }
  });
  it('upsamples 8 kHz -> 16 kHz keeping a 1 kHz tone', () => {
    const y = resampleTo(Float32Array.from(tone(1000, 8000, 0.5)), 8000, 16_000);
    expect(y.length).toBe(8000);
    expect(rms(y) / (0.5 / Math.SQRT2)).toBeGreaterThan(0.95);
  });
});

describe('loadAudio: per-file errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'emofuse-audio-'));
    const good = wavBytes([tone(300, 22_050, 0.3), tone(300, 22_050, 0.3)], 22_050, '16');
    writeFileSync(join(dir, 'good.wav'), good);
    writeFileSync(join(dir, 'empty.wav'), new Uint8Array(0));
    writeFileSync(join(dir, 'noise.wav'), new TextEncoder().encode('this is not audio at all, just text'));
    writeFileSync(join(dir, 'truncated.wav'), good.subarray(0, 2000));
    writeFileSync(join(dir, 'silent.wav'), wavBytes([new Float64Array(4000)], 16_000, '16'));
    writeFileSync(join(dir, 'nosamples.wav'), wavBytes([new Float64Array(0)], 16_000, '16'));
    writeFileSync(join(dir, 'clip.mp3'), new Uint8Array([0xff, 0xfb, 0x90, 0x00, 1, 2, 3]));
  });
  it('loads a good 22.05 kHz stereo file as 16 kHz mono', () => {
    const x = loadAudio(join(dir, 'good.wav'));
    expect(x.length).toBe(Math.round(0.3 * 16_000));
    expect(rms(x)).toBeGreaterThan(0.3);
  });
  const cases: [string, string, RegExp][] = [
    ['missing.wav', 'missing', /not found/],
    ['empty.wav', 'empty', /empty \(0 bytes\)/],
    ['noise.wav', 'corrupt', /not a WAV file/],
    ['truncated.wav', 'truncated', /truncated: the data chunk declares \d+ bytes, \d+ are present/],
    ['silent.wav', 'silent', /silent/],
    ['nosamples.wav', 'empty', /no audio samples/],
  ];
  for (const [name, problem, message] of cases) {
    it(`reports ${name} as ${problem}, naming the file`, () => {
      const file = join(dir, name);
      let caught: unknown;
      try {
        loadAudio(file);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(AudioError);
      expect((caught as AudioError).problem).toBe(problem);
      expect((caught as AudioError).message).toContain(file);
      expect((caught as AudioError).message).toMatch(message);
    });
  }
  it('sends other containers to ffmpeg, or names the package to install', () => {
    let caught: unknown;
    try {
      loadAudio(join(dir, 'clip.mp3'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AudioError);
    // Either ffmpeg is missing (message names it) or it is present and rejects these 7 garbage bytes.
    expect((caught as AudioError).message).toMatch(/apt-get install ffmpeg|ffmpeg cannot decode/);
  });
  it.runIf(existsSync(join(assets, 'meld-audio/dia0_utt0.wav')))('decodes a real MELD 44.1 kHz stereo wav', () => {
    const x = loadAudio(join(assets, 'meld-audio/dia0_utt0.wav'));
    expect(x.length).toBeGreaterThan(16_000 * 0.5);
    expect(rms(x, 0)).toBeGreaterThan(1e-3);
  });
});
