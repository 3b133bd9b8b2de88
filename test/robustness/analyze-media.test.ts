// `emofuse analyze` on bad media, as a user runs it (the bundled CLI): files cut short (WAV, MP3, M4A, FLAC), empty,
// digitally silent, sound without speech, video without sound, wrongly named (an MP3 or a text file called .wav), a
// folder or a dangling link named like a recording, and a file that cannot be read. Each ends in a clear message at
// exit 2 (the file and what is wrong with it, never a stack trace) or a correct report (exit 0, "no speech found"
// for sound without speech). The media are made here with ffmpeg in a temp folder, a few seconds each.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallCheckpoint } from '../model/analyze-helpers.ts';
import { buildCli, emofuse } from '../helpers/cli.ts';
import { tone, wav } from './inputs.ts';

const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-analyze-media-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** ffmpeg with `args`, writing `name` in the temp folder; its path. */
function ff(name: string, args: string[]): string {
  const out = join(tmp, name);
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args, out]);
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
  return out;
}
/** The first `fraction` of a file's bytes, as a new file. */
function cut(file: string, name: string, fraction = 0.5): string {
  const b = readFileSync(file);
  const out = join(tmp, name);
  writeFileSync(out, b.subarray(0, Math.floor(b.length * fraction)));
  return out;
}

let ckpt: string;
let srt: string;
beforeAll(async () => {
  await buildCli();
  ckpt = await smallCheckpoint(join(tmp, 'small.safetensors'));
  srt = join(tmp, 'words.srt');
  writeFileSync(srt, '1\n00:00:00,000 --> 00:00:04,000\nhello there\n');
}, 120_000);

const analyze = (file: string, out = join(tmp, `out-${Math.random().toString(36).slice(2)}`)) =>
  emofuse(['analyze', file, '--out', out, '--checkpoint', ckpt, '--text-from', srt, '--backend', 'cpu'], {
    env: { EMOFUSE_OFFLINE: '1' },
    timeoutMs: 60_000,
  }).then((r) => ({ ...r, out }));

/** Exit 2, the file named, the message matched, no stack trace and no "unexpected error". */
async function refused(file: string, says: RegExp) {
  const r = await analyze(file);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toContain(file);
  expect(r.stderr).toMatch(says);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected error/);
}

const sine = (seconds: number) => ['-f', 'lavfi', '-i', `sine=f=220:d=${seconds}`];

describe.skipIf(!hasFfmpeg)('emofuse analyze on bad media', () => {
  describe('cut short: refused at exit 2 (after the report of what decodes, for compressed files)', () => {
    it('a WAV whose data chunk declares more bytes than are present', async () => {
      await refused(cut(ff('whole.wav', sine(4)), 'cut.wav'), /is truncated: its WAV header declares \d+ bytes of audio, \d+ are present/);
    });
    it.each([
      ['mp3', ['-b:a', '32k']],
      ['m4a', ['-c:a', 'aac', '-movflags', '+faststart']],
      ['flac', []],
    ])('a %s cut in half', async (ext, args) => {
      const file = cut(ff(`whole.${ext}`, [...sine(4), ...args]), `cut.${ext}`);
      const r = await analyze(file);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /is truncated or damaged: it says it lasts 4\.\d s but only [0-9.]+ s decode; the report in .* covers that part/,
      );
      expect(readFileSync(join(r.out, 'summary.md'), 'utf8')).toMatch(/truncated or damaged/);
    });
  });

  it('an empty file', async () => {
    const file = join(tmp, 'empty.mp3');
    writeFileSync(file, '');
    await refused(file, /file is empty \(0 bytes\)/);
  });

  it('a digitally silent recording: nothing to analyse (exit 2)', async () => {
    await refused(
      ff('silent.wav', ['-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '3']),
      /is silent \(peak 0\.0e\+0 over 3\.0 s\): nothing to analyse/,
    );
  });

  it('sound without speech: a report that says no speech was found (exit 0)', async () => {
    const file = ff('hum.flac', ['-f', 'lavfi', '-i', 'anoisesrc=d=3:c=pink:a=0.01:r=16000']);
    const r = await analyze(file);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(r.out, 'summary.md'), 'utf8')).toMatch(/no speech found/);
    expect(readFileSync(join(r.out, 'segments.csv'), 'utf8').trim().split('\n')).toHaveLength(1); // the header alone
  });

  it('a video with no audio stream', async () => {
    const file = ff('video-only.mp4', ['-f', 'lavfi', '-i', 'testsrc=d=1:s=64x64:r=5', '-c:v', 'mpeg4']);
    await refused(file, /has no audio stream \(only video\): nothing to analyse/);
  });

  describe('wrongly named', () => {
    it('an MP3 named .wav is read by its content (exit 0)', async () => {
      const mp3 = ff('really-mp3.mp3', ['-f', 'lavfi', '-i', 'anoisesrc=d=2:c=pink:a=0.01:r=16000', '-b:a', '32k']);
      const file = join(tmp, 'really-mp3.wav');
      writeFileSync(file, readFileSync(mp3));
      const r = await analyze(file);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(r.out, 'summary.md'), 'utf8')).toContain('really-mp3.wav');
    });
    it('a text file named .wav', async () => {
      const file = join(tmp, 'notes.wav');
      writeFileSync(file, 'not audio\n'.repeat(50));
      await refused(file, /not a recording ffmpeg can read .*: give an audio or video file/);
    });
    it('a WAV header with a wrong format tag over PCM samples', async () => {
      const file = join(tmp, 'tag.wav');
      writeFileSync(file, wav(tone(300, 2), { formatTag: 0x55 })); // says MP3 inside RIFF
      await refused(file, /ffmpeg could not decode it \(exit \d+\): .*Invalid data found/);
    });
  });

  describe('not a readable file', () => {
    it('a folder named like a recording is taken as a folder of recordings, and has none', async () => {
      const file = join(tmp, 'folder.wav');
      mkdirSync(file);
      await refused(file, /no recordings here/);
    });
    it('a link to nothing', async () => {
      const file = join(tmp, 'dangling.wav');
      symlinkSync(join(tmp, 'gone.wav'), file);
      await refused(file, /file not found/);
    });
    it.skipIf(process.getuid?.() === 0)('a file without read permission', async () => {
      const file = ff('locked.wav', sine(1));
      chmodSync(file, 0o000);
      await refused(file, /EACCES|permission denied/i);
    });
  });
});
