// RAVDESS and CREMA-D by name: their release layouts on tiny generated WAV / FLAC fixtures (labels, text, speakers and
// speaker-independent splits from the file names; the fields validated with the file named), and the real RAVDESS
// of $EMOFUSE_ASSETS checked row by row against its manifest.csv when present.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  CREMAD_CLASSES,
  CREMAD_SENTENCES,
  DATASETS,
  DatasetError,
  openDataset,
  RAVDESS_CLASSES,
  readCremaD,
  readManifestRows,
  readRAVDESS,
} from '../../packages/model/src/datasets/index.ts';
import { loadAudio } from '../../packages/model/src/audio/index.ts';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';

const assets = modelSettings.assetsDir;
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-corpora-'));
const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;

function errorOf(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DatasetError) return err;
    throw err;
  }
  throw new Error('expected a DatasetError');
}

/** A 0.1 s 16-bit mono WAV: a tone at `freq` Hz, 16 kHz. */
function wavBytes(freq = 440, rate = 16_000, seconds = 0.1): Buffer {
  const n = Math.round(rate * seconds);
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(16000 * Math.sin((2 * Math.PI * freq * i) / rate)), 44 + 2 * i);
  return b;
}

/** Writes `file` as a WAV, or as FLAC through ffmpeg (an empty stand-in without ffmpeg: the readers only list files). */
function writeClip(file: string): void {
  if (/\.flac$/i.test(file) && hasFfmpeg) {
    const wav = `${file}.src.wav`;
    writeFileSync(wav, wavBytes(330));
    const r = spawnSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', wav, '-c:a', 'flac', file]);
    if (r.status !== 0) throw new Error(`ffmpeg: ${r.stderr}`);
    spawnSync('rm', [wav]);
  } else writeFileSync(file, /\.wav$/i.test(file) ? wavBytes() : Buffer.alloc(0));
}

function ravdessFolder(name: string, files: string[], under = ''): string {
  const root = join(tmp, name);
  for (const f of files) {
    const dir = join(root, under, `Actor_${f.replace(/\..*$/, '').slice(-2)}`);
    mkdirSync(dir, { recursive: true });
    writeClip(join(dir, f.includes('.') ? f : `${f}.wav`));
  }
  return root;
}

describe('RAVDESS', () => {
  it('is a dataset by name', () => {
    expect(DATASETS).toContain('ravdess');
    expect(DATASETS).toContain('crema-d');
  });

  it('reads the release layout: labels, text and speakers from the names, splits by actor, song skipped and counted', () => {
    const root = ravdessFolder('ravdess-release', [
      '03-01-03-02-01-01-01', // happy, strong, "Kids ...", actor 01: train
      '03-01-02-01-02-02-16.flac', // calm, "Dogs ...", actor 16: train
      '03-01-08-01-01-01-17', // surprised, actor 17: dev
      '03-01-05-02-02-01-18', // angry, actor 18: dev
      '03-01-06-01-01-02-24', // fearful, actor 24: test
      '03-02-04-01-01-01-01', // song: skipped
    ]);
    writeFileSync(join(root, 'Actor_01/01-01-03-02-01-01-01.mp4'), ''); // a video file: ignored
    const ds = openDataset('ravdess', root);
    expect(ds.name).toBe('ravdess');
    expect(ds.classNames).toEqual(['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']);
    expect(ds.items.map((i) => [i.id, ds.classNames[i.label], i.text, i.split, i.speaker])).toEqual([
      ['03-01-03-02-01-01-01', 'happy', 'Kids are talking by the door', 'train', 'actor01'],
      ['03-01-02-01-02-02-16', 'calm', 'Dogs are sitting by the door', 'train', 'actor16'],
      ['03-01-08-01-01-01-17', 'surprised', 'Kids are talking by the door', 'dev', 'actor17'],
      ['03-01-05-02-02-01-18', 'angry', 'Dogs are sitting by the door', 'dev', 'actor18'],
      ['03-01-06-01-01-02-24', 'fearful', 'Kids are talking by the door', 'test', 'actor24'],
    ]);
    expect(ds.items[1]!.audio).toBe(join(root, 'Actor_16/03-01-02-01-02-02-16.flac'));
    expect(ds.notes!.join('\n')).toMatch(/skipped 1 song recording \(vocal channel 02\)/);
    expect(ds.notes!.join('\n')).toMatch(/ignored 1 file that are not \.wav or \.flac/);
    expect(openDataset('ravdess', root, { textOnly: true }).items.every((i) => i.audio === null)).toBe(true);
    // the fixtures decode as the extractor will read them
    expect(loadAudio(ds.items[0]!.audio!).length).toBe(1600);
  });

  it.runIf(hasFfmpeg)('decodes a FLAC recording (through ffmpeg)', () => {
    const root = ravdessFolder('ravdess-flac', ['03-01-01-01-01-01-02.flac']);
    const clip = loadAudio(readRAVDESS(root).items[0]!.audio!);
    expect(clip.length).toBe(1600);
    expect(Math.max(...clip)).toBeGreaterThan(0.3);
  });

  it('reads the assets layout (Actor folders under audio/) and says which splits are missing', () => {
    const root = ravdessFolder('ravdess-assets', ['03-01-01-01-01-01-01.flac', '03-01-07-01-01-01-17.flac'], 'audio');
    const ds = readRAVDESS(root);
    expect(ds.items.map((i) => [ds.classNames[i.label], i.split])).toEqual([
      ['neutral', 'train'],
      ['disgust', 'dev'],
    ]);
    expect(ds.notes).toEqual([`${join(root, 'audio')}: no recordings of actors 19-24: no test split (the dataset has train and dev only)`]);
  });

  it('stops with the file and the field on a name that is not RAVDESS speech', () => {
    const cases: [string[], RegExp][] = [
      [
        ['03-01-09-01-01-01-01'],
        /03-01-09-01-01-01-01\.wav, field 'file name: emotion': emotion code '09': expected 01-08 \(01 neutral, 02 calm/,
      ],
      [['01-01-01-01-01-01-01'], /field 'file name: modality': modality code '01': expected 03 \(audio only\)/],
      [['03-03-01-01-01-01-01'], /vocal channel code '03': expected 01 \(speech; 02 song is skipped\)/],
      [['03-01-01-03-01-01-01'], /intensity code '03': expected 01 \(normal\) or 02 \(strong\)/],
      [['03-01-01-01-03-01-01'], /statement code '03': expected 01 \('Kids are talking by the door'\)/],
      [['03-01-01-01-01-03-01'], /repetition code '03'/],
      [['03-01-01-01-01-01-25'], /actor code '25': expected 01-24/],
      [['happy-01'], /happy-01\.wav, field 'file name': file name is not RAVDESS's MM-VV-EE-II-SS-RR-AA/],
    ];
    for (const [k, [files, want]] of cases.entries())
      expect(errorOf(() => readRAVDESS(ravdessFolder(`ravdess-bad-${k}`, files))).message).toMatch(want);
    // a file in another actor's folder
    const moved = ravdessFolder('ravdess-moved', ['03-01-01-01-01-01-02']);
    mkdirSync(join(moved, 'Actor_03'));
    writeClip(join(moved, 'Actor_03/03-01-01-01-01-01-04.wav'));
    expect(errorOf(() => readRAVDESS(moved)).message).toMatch(
      /Actor_03\/03-01-01-01-01-01-04\.wav, field 'file name: actor': actor code '04': expected 03, the actor of its folder Actor_03/,
    );
    // the same recording twice
    const twice = ravdessFolder('ravdess-twice', ['03-01-01-01-01-01-02', '03-01-01-01-01-01-02.flac']);
    expect(errorOf(() => readRAVDESS(twice)).message).toMatch(/the same recording as .*: keep one of the \.wav and the \.flac/);
    // the song release alone
    expect(errorOf(() => readRAVDESS(ravdessFolder('ravdess-song', ['03-02-01-01-01-01-01', '03-02-05-02-01-01-01']))).message).toMatch(
      /all 2 recordings are song \(vocal channel 02\): emofuse reads RAVDESS speech .*Audio_Speech_Actors_01-24\.zip/,
    );
    // no Actor folders
    mkdirSync(join(tmp, 'ravdess-empty'));
    expect(errorOf(() => readRAVDESS(join(tmp, 'ravdess-empty'))).message).toMatch(
      /no Actor_XX folders here or in audio\/: expected RAVDESS's release layout .*zenodo\.org\/record\/1188976/,
    );
    expect(errorOf(() => openDataset('ravdess', join(tmp, 'nowhere'))).message).toMatch(/RAVDESS folder not found/);
  });
});

describe.runIf(existsSync(join(assets, 'ravdess/audio')))('RAVDESS from the assets', () => {
  it('agrees with the assets manifest.csv on every recording: label, text, split, speaker, audio file', () => {
    const ds = readRAVDESS(join(assets, 'ravdess'));
    const rows = readManifestRows(join(assets, 'ravdess/manifest.csv'));
    expect(ds.items).toHaveLength(1080);
    expect(rows).toHaveLength(1080);
    const byId = new Map(ds.items.map((i) => [i.id, i]));
    for (const r of rows) {
      const it = byId.get(String(r.id));
      expect(it, String(r.id)).toBeDefined();
      expect([ds.classNames[it!.label], it!.text, it!.split, it!.speaker, it!.audio]).toEqual([
        r.label,
        r.text,
        r.split,
        r.speaker,
        join(assets, 'ravdess', String(r.audio)),
      ]);
    }
    // speaker-independent: train actors 01-16, dev 17-18, no test (actors 19-24 are not in the assets)
    const actors = (s: string) => [...new Set(ds.items.filter((i) => i.split === s).map((i) => i.speaker))].sort();
    expect(actors('train')).toEqual(Array.from({ length: 16 }, (_, k) => `actor${String(k + 1).padStart(2, '0')}`));
    expect(actors('dev')).toEqual(['actor17', 'actor18']);
    expect(ds.notes).toEqual([expect.stringMatching(/no recordings of actors 19-24: no test split/)]);
    expect(new Set(ds.items.map((i) => i.label)).size).toBe(RAVDESS_CLASSES.length);
  });
});
describe.skipIf(existsSync(join(assets, 'ravdess/audio')))('RAVDESS from the assets', () => {
  it.skip(`skipped: no ${join(assets, 'ravdess/audio')} (set EMOFUSE_ASSETS to the offline assets folder)`, () => {});
});

describe('CREMA-D', () => {
  function cremaFolder(name: string, files: string[], under = 'AudioWAV'): string {
    const root = join(tmp, name);
    mkdirSync(join(root, under), { recursive: true });
    for (const f of files) writeClip(join(root, under, f.includes('.') ? f : `${f}.wav`));
    return root;
  }

  it('reads AudioWAV/: labels from the names, the sentence codes as text, splits by actor', () => {
    const root = cremaFolder('crema-release', [
      '1001_DFA_ANG_XX',
      '1071_IEO_HAP_HI',
      '1072_TIE_SAD_LO',
      '1081_WSI_NEU_XX',
      '1082_ITH_FEA_MD',
      '1091_MTI_DIS_XX.flac',
    ]);
    const ds = openDataset('crema-d', root);
    expect(ds.name).toBe('crema-d');
    expect(ds.classNames).toEqual(CREMAD_CLASSES);
    expect(ds.items.map((i) => [i.id, ds.classNames[i.label], i.text, i.split, i.speaker])).toEqual([
      ['1001_DFA_ANG_XX', 'anger', "Don't forget a jacket", 'train', '1001'],
      ['1071_IEO_HAP_HI', 'happy', "It's eleven o'clock", 'train', '1071'],
      ['1072_TIE_SAD_LO', 'sad', 'That is exactly what happened', 'dev', '1072'],
      ['1081_WSI_NEU_XX', 'neutral', "We'll stop in a couple of minutes", 'dev', '1081'],
      ['1082_ITH_FEA_MD', 'fear', "I think I have a doctor's appointment", 'test', '1082'],
      ['1091_MTI_DIS_XX', 'disgust', 'Maybe tomorrow it will be cold', 'test', '1091'],
    ]);
    expect(ds.items[0]!.audio).toBe(join(root, 'AudioWAV/1001_DFA_ANG_XX.wav'));
    expect(loadAudio(ds.items[0]!.audio!).length).toBe(1600);
    expect(ds.notes).toBeUndefined();
    expect(Object.keys(CREMAD_SENTENCES)).toHaveLength(12);
    // the clips in the data folder itself; a split without actors is noted
    const flat = cremaFolder('crema-flat', ['1005_IWW_ANG_XX', '1080_TSI_SAD_XX'], '');
    const f = readCremaD(flat, { textOnly: true });
    expect(f.items.map((i) => [i.split, i.audio])).toEqual([
      ['train', null],
      ['dev', null],
    ]);
    expect(f.notes).toEqual([`${flat}: no recordings of actors 1082-1091: no test split`]);
  });

  it('stops with the file and the field on a name that is not CREMA-D', () => {
    const cases: [string, RegExp][] = [
      ['1001_XYZ_ANG_XX', /1001_XYZ_ANG_XX\.wav, field 'file name: sentence': sentence code 'XYZ': expected one of IEO, TIE/],
      ['1001_DFA_JOY_XX', /emotion code 'JOY': expected one of ANG \(anger\), DIS \(disgust\)/],
      ['1001_DFA_ANG_ZZ', /level code 'ZZ': expected one of LO, MD, HI, XX/],
      ['1200_DFA_ANG_XX', /actor code '1200': expected 1001-1091/],
      ['1001-DFA-ANG-XX', /file name is not CREMA-D's AAAA_SSS_EEE_LL/],
    ];
    for (const [k, [file, want]] of cases.entries())
      expect(errorOf(() => readCremaD(cremaFolder(`crema-bad-${k}`, [file]))).message).toMatch(want);
    mkdirSync(join(tmp, 'crema-empty/AudioWAV'), { recursive: true });
    expect(errorOf(() => readCremaD(join(tmp, 'crema-empty'))).message).toMatch(
      /AudioWAV: no \.wav or \.flac files: expected CREMA-D's AudioWAV\/1001_DFA_ANG_XX\.wav/,
    );
  });
});
