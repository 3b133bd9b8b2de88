// loadAudio's guards one by one: non-finite and absurd samples, unknown WAV format tags, a folder named like a
// clip, and maxSeconds (predict's bound on long recordings) reading only the start of a file.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AudioError, loadAudio } from '../../packages/model/src/audio/decode.ts';
import { tone, wav } from './inputs.ts';

const dir = mkdtempSync(join(tmpdir(), 'emofuse-audio-guards-'));
const put = (name: string, bytes: Uint8Array) => (writeFileSync(join(dir, name), bytes), join(dir, name));
const problem = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof AudioError) return [err.problem, err.message] as const;
    throw err;
  }
  return ['ok', ''] as const;
};

describe('loadAudio guards', () => {
  it.each([
    ['NaN', NaN, /sample 100 is NaN/],
    ['+Inf', Infinity, /sample 100 is Infinity/],
    ['-Inf', -Infinity, /sample 100 is -Infinity/],
    ['1e30', 1e30, /sample 100 is 1[.0-9]*e\+30 \(far outside/],
  ] as const)('refuses a float WAV with a %s sample, naming the sample', (name, v, says) => {
    const x = tone(300);
    x[100] = v;
    const [p, msg] = problem(() => loadAudio(put(`${name}.wav`, wav(x, { float: true }))));
    expect(p).toBe('non-finite');
    expect(msg).toMatch(says);
    expect(msg).toContain(`${name}.wav`);
  });

  it('reports an all-NaN clip as NaN, not as silent', () => {
    const [p, msg] = problem(() => loadAudio(put('allnan.wav', wav(new Float32Array(1600).fill(NaN), { float: true }))));
    expect(p).toBe('non-finite');
    expect(msg).toMatch(/every sample/);
  });

  it('refuses an unknown WAV format tag instead of decoding it as PCM', () => {
    const [p, msg] = problem(() => loadAudio(put('mulaw.wav', wav(tone(200), { formatTag: 0x55 }))));
    expect(p).toBe('unsupported');
    expect(msg).toMatch(/format tag 85 \(0x55\)/);
  });

  it('lists a folder named x.wav as a missing clip (no EISDIR)', () => {
    mkdirSync(join(dir, 'x.wav'));
    expect(problem(() => loadAudio(join(dir, 'x.wav')))[0]).toBe('missing');
  });

  it('maxSeconds reads the start of a long clip: the same samples, and none of the damaged rest', () => {
    const long = tone(220, 10, 44100);
    const file = put('long.wav', wav(long, { rate: 44100 }));
    const full = loadAudio(file);
    const cut = loadAudio(file, { maxSeconds: 2 });
    expect(cut.length).toBe(32000);
    const edge = 1600; // the resampler's last 0.1 s sees the cut
    expect(Array.from(cut.subarray(0, cut.length - edge))).toEqual(Array.from(full.subarray(0, cut.length - edge)));
    // a file whose data chunk declares 10 s but holds 3: truncated when read whole, fine when only 2 s are read
    const bytes = wav(long, { rate: 44100 });
    const truncated = put('truncated.wav', bytes.subarray(0, 44 + 3 * 44100 * 2));
    expect(problem(() => loadAudio(truncated))[0]).toBe('truncated');
    expect(loadAudio(truncated, { maxSeconds: 2 }).length).toBe(32000);
  });
});
