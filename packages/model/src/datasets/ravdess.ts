// RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) in its official release layout:
// Actor_XX/MM-VV-EE-II-SS-RR-AA.wav (Zenodo record 1188976, Audio_Speech_Actors_01-24.zip), or .flac (the offline
// assets' 16 kHz copy, which keeps the folders under audio/). The seven two-digit fields of a name are
// modality (MM: 01 audio-video, 02 video only, 03 audio only), vocal channel (VV: 01 speech, 02 song), emotion
// (EE, RAVDESS_CLASSES in code order), intensity (II: 01 normal, 02 strong), statement (SS: the two sentences),
// repetition (RR) and actor (AA, 01-24; even ids female). Labels, text and speakers come from the names.
// Only audio-only speech (03-01) is read: song files (03-02, the song zip unpacked into the same Actor folders) are
// skipped and counted in the notes; any other modality stops with the file named.
// Splits are speaker-independent, by actor: RAVDESS_SPLITS (train 01-16, dev 17-18, test 19-24), as in
// $EMOFUSE_ASSETS/ravdess/manifest.csv (which has actors 01-18 only: no test split there).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetError, type Dataset, type DatasetItem } from './types.ts';

/** Emotion codes 01..08 in order; the names are RAVDESS's own (and the assets manifest's). */
export const RAVDESS_CLASSES = ['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised'] as const;
/** Statement code -> the sentence spoken (text carries no emotion: both are neutral). */
export const RAVDESS_STATEMENTS: Record<string, string> = { '01': 'Kids are talking by the door', '02': 'Dogs are sitting by the door' };
/** Speaker-independent splits by actor number (inclusive ranges). */
export const RAVDESS_SPLITS = [
  { split: 'train', actors: [1, 16] },
  { split: 'dev', actors: [17, 18] },
  { split: 'test', actors: [19, 24] },
] as const;

const NAME = /^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.(wav|flac)$/i;
const LAYOUT =
  "RAVDESS's release layout Actor_01/03-01-05-01-01-01-01.wav (unzip Audio_Speech_Actors_01-24.zip from zenodo.org/record/1188976)";

export function ravdessSplit(actor: number): string {
  return RAVDESS_SPLITS.find((s) => actor >= s.actors[0] && actor <= s.actors[1])!.split;
}

export function readRAVDESS(dataDir: string, options: { textOnly?: boolean } = {}): Dataset {
  const root = resolve(dataDir);
  if (!existsSync(root)) throw new DatasetError(root, `RAVDESS folder not found (expected ${LAYOUT})`);
  const actorDirs = (d: string) =>
    existsSync(d) && statSync(d).isDirectory()
      ? readdirSync(d)
          .filter((f) => /^Actor_\d\d$/.test(f) && statSync(join(d, f)).isDirectory())
          .sort()
      : [];
  // the release unzips to Actor_XX/ (or Audio_Speech_Actors_01-24/Actor_XX/); the assets keep them under audio/
  const base = [root, join(root, 'audio'), join(root, 'Audio_Speech_Actors_01-24')].find((d) => actorDirs(d).length > 0);
  if (!base) throw new DatasetError(root, `no Actor_XX folders here or in audio/: expected ${LAYOUT}`);
  const items: DatasetItem[] = [];
  const seen = new Map<string, string>();
  let song = 0;
  let other = 0;
  for (const dir of actorDirs(base)) {
    const folderActor = Number(dir.slice(6));
    for (const f of readdirSync(join(base, dir)).sort()) {
      const file = join(base, dir, f);
      if (!/\.(wav|flac)$/i.test(f)) {
        other++; // video (.mp4) of the audio-video zips, readmes, .DS_Store
        continue;
      }
      const m = NAME.exec(f);
      if (!m)
        throw new DatasetError(
          file,
          "file name is not RAVDESS's MM-VV-EE-II-SS-RR-AA (modality, vocal channel, emotion, intensity, statement, repetition, " +
            'actor), e.g. 03-01-05-01-01-01-01.wav',
          undefined,
          'file name',
        );
      const [, modality, channel, emotion, intensity, statement, repetition, actor] = m as unknown as string[];
      const bad = (field: string, value: string, want: string): never => {
        throw new DatasetError(file, `${field} code '${value}': expected ${want}`, undefined, `file name: ${field}`);
      };
      if (modality !== '03')
        bad('modality', modality!, '03 (audio only): 01 and 02 are the video files; use Audio_Speech_Actors_01-24.zip');
      if (channel === '02') {
        song++;
        continue;
      }
      if (channel !== '01') bad('vocal channel', channel!, '01 (speech; 02 song is skipped)');
      const label = Number(emotion) - 1;
      if (!(label >= 0 && label < RAVDESS_CLASSES.length))
        bad('emotion', emotion!, `01-08 (${RAVDESS_CLASSES.map((c, i) => `0${i + 1} ${c}`).join(', ')})`);
      if (intensity !== '01' && intensity !== '02') bad('intensity', intensity!, '01 (normal) or 02 (strong)');
      const text =
        RAVDESS_STATEMENTS[statement!] ??
        bad('statement', statement!, `01 ('${RAVDESS_STATEMENTS['01']}') or 02 ('${RAVDESS_STATEMENTS['02']}')`);
      if (repetition !== '01' && repetition !== '02') bad('repetition', repetition!, '01 or 02');
      const a = Number(actor);
      if (!(a >= 1 && a <= 24)) bad('actor', actor!, '01-24');
      if (a !== folderActor) bad('actor', actor!, `${dir.slice(6)}, the actor of its folder ${dir} (a file moved or renamed?)`);
      const id = f.replace(/\.(wav|flac)$/i, '');
      if (seen.has(id))
        throw new DatasetError(file, `the same recording as ${seen.get(id)}: keep one of the .wav and the .flac`, undefined, 'file name');
      seen.set(id, file);
      items.push({ id, text, audio: options.textOnly ? null : file, label, split: ravdessSplit(a), speaker: `actor${actor}` });
    }
  }
  if (items.length === 0) {
    throw new DatasetError(
      base,
      song > 0
        ? `all ${song} recordings are song (vocal channel 02): emofuse reads RAVDESS speech (03-01-...), from Audio_Speech_Actors_01-24.zip`
        : `no .wav or .flac recordings in the Actor_XX folders: expected ${LAYOUT}`,
    );
  }
  const notes: string[] = [];
  if (song) notes.push(`${base}: skipped ${song} song recording${song > 1 ? 's' : ''} (vocal channel 02): only speech (03-01) is read`);
  if (other)
    notes.push(`${base}: ignored ${other} file${other > 1 ? 's' : ''} that are not .wav or .flac (e.g. the audio-video .mp4 files)`);
  const missing = RAVDESS_SPLITS.filter((s) => !items.some((i) => i.split === s.split));
  if (missing.length) {
    const present = RAVDESS_SPLITS.filter((s) => !missing.includes(s)).map((s) => s.split);
    notes.push(
      `${base}: no recordings of actors ` +
        `${missing.map((s) => `${String(s.actors[0]).padStart(2, '0')}-${s.actors[1]}`).join(', ')}: no ` +
        `${missing.map((s) => s.split).join(' or ')} split (the dataset has ${present.join(' and ')} only)`,
    );
  }
  return { name: 'ravdess', classNames: RAVDESS_CLASSES, items, source: root, ...(notes.length ? { notes } : {}) };
}
