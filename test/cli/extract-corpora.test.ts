// `emofuse extract --dataset ravdess | crema-d` as a user runs it (the bundled CLI in a child process) on tiny
// generated release layouts: a cache with the stated splits and the notes printed; a bad file name stops with exit 2
// and the file and field named, never a stack trace.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import wavefilePkg from 'wavefile';
import { buildCli, emofuse } from '../helpers/cli.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-cli-corpora-'));

function wav(file: string, k: number): void {
  const w = new WaveFile();
  w.fromScratch(
    1,
    16000,
    '16',
    Array.from({ length: 4800 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * (180 + 30 * k) * i) / 16000))),
  );
  writeFileSync(file, w.toBuffer());
}

beforeAll(buildCli, 120_000);

describe('emofuse extract --dataset ravdess / crema-d', () => {
  it('lists both in --help', async () => {
    const r = await emofuse(['extract', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' '); // as wrapped to the terminal's width
    expect(help).toMatch(/dataset layout: manifest, emodb, meld, ravdess, crema-d, controlled/);
    expect(help).toMatch(/ravdess RAVDESS speech: Actor_XX\/03-01-EE-II-SS-RR-AA\.wav or \.flac/);
    expect(help).toMatch(/crema-d CREMA-D: AudioWAV\/AAAA_SSS_EEE_LL\.wav/);
  });

  it('extracts RAVDESS by actor split, says a song file was skipped, and stops on a bad name with exit 2', async () => {
    const root = join(tmp, 'ravdess');
    const names = ['03-01-01-01-01-01-01', '03-01-03-02-02-01-02', '03-01-05-01-01-02-17', '03-01-04-02-02-02-20', '03-02-03-01-01-01-01'];
    for (const [k, n] of names.entries()) {
      mkdirSync(join(root, `Actor_${n.slice(-2)}`), { recursive: true });
      wav(join(root, `Actor_${n.slice(-2)}`, `${n}.wav`), k);
    }
    const out = join(tmp, 'ravdess-cache');
    const r = await emofuse(['extract', '--dataset', 'ravdess', '--data', root, '--out', out, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/note: .*skipped 1 song recording \(vocal channel 02\)/);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    expect(index.dataset.name).toBe('ravdess');
    expect(index.dataset.classNames).toEqual(['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']);
    expect(index.splits.train.ids).toEqual(['03-01-01-01-01-01-01', '03-01-03-02-02-01-02']);
    expect(index.splits.dev.ids).toEqual(['03-01-05-01-01-02-17']);
    expect(index.splits.test.labels).toEqual([3]);

    wav(join(root, 'Actor_02', '03-01-11-01-01-01-02.wav'), 9);
    const bad = await emofuse(['extract', '--dataset', 'ravdess', '--data', root, '--out', join(tmp, 'never'), '--no-progress']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Actor_02\/03-01-11-01-01-01-02\.wav, field 'file name: emotion': emotion code '11': expected 01-08/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('extracts CREMA-D by actor split', async () => {
    const root = join(tmp, 'crema-d');
    mkdirSync(join(root, 'AudioWAV'), { recursive: true });
    const names = ['1001_DFA_ANG_XX', '1050_IEO_HAP_HI', '1075_TIE_SAD_LO', '1088_ITS_NEU_XX'];
    for (const [k, n] of names.entries()) wav(join(root, 'AudioWAV', `${n}.wav`), k);
    const out = join(tmp, 'crema-cache');
    const r = await emofuse(['extract', '--dataset', 'crema-d', '--data', root, '--out', out, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    expect(index.dataset.classNames).toEqual(['anger', 'disgust', 'fear', 'happy', 'neutral', 'sad']);
    expect(Object.fromEntries(Object.entries(index.splits).map(([s, v]) => [s, (v as { ids: string[] }).ids]))).toEqual({
      train: ['1001_DFA_ANG_XX', '1050_IEO_HAP_HI'],
      dev: ['1075_TIE_SAD_LO'],
      test: ['1088_ITS_NEU_XX'],
    });
  });
});
