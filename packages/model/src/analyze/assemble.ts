// Recordings with a known answer: real clips (RAVDESS actors 01-18, EmoDB, the 4 MELD utterances) laid end to end
// with pauses of known length, optionally under white noise at a stated SNR and repeated to a target length. The
// truth is each clip's span in the recording, its label, its source id and its words. Tests of `analyze` and
// `bench analyze` assemble into a temporary folder; the audio is never committed.
//
// Each clip is trimmed to its speech before it is laid down (RAVDESS clips open with about a second of room tone):
// the first and last 10 ms window whose RMS is within TRIM_DB of the clip's loudest window. So a clip's span in
// the truth is where its speech starts and ends, which is what a voice-activity detector can find.

import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { loadAudio, TARGET_SAMPLE_RATE } from '../audio/decode.ts';
import { readEmoDB } from '../datasets/emodb.ts';
import { readRAVDESS } from '../datasets/ravdess.ts';
import { mulberry32 } from '@emofuse/kernels';
import { gaussian } from '../random.ts';
import { formatSrtTime } from './subtitles.ts';
import { SileroVad, Segmenter, VAD_DEFAULTS, VAD_FRAME } from './vad.ts';

export type AssembleCorpus = 'ravdess' | 'emodb' | 'meld';

/** One clip to lay down: where its audio is, what it is, what was said. */
export interface SourceClip {
  /** `<corpus>:<id>`, e.g. `ravdess:03-01-05-02-01-01-01`, `emodb:03a01Wa`, `meld:dia0_utt0`. */
  source: string;
  audio: string;
  label: string;
  text: string;
}

/** A clip's place in an assembled recording (seconds from its start). */
export interface TruthClip extends Omit<SourceClip, 'audio'> {
  /** The laid-down clip: its speech by the energy trim (TRIM_DB), breaths and room noise near the words included. */
  start: number;
  end: number;
  /**
   * Where Silero VAD hears speech in the clip played alone (clean, fresh state, 0.5 s of silence around it; the
   * first to the last speech frame, VAD_DEFAULTS without padding): the reference for boundary tests, which then
   * measure what the recording changes (the VAD's state carried across clips, loudness, pauses, noise, codec,
   * segmentation). null: the VAD hears no speech in it alone.
   */
  speechStart: number | null;
  speechEnd: number | null;
}

export interface RecordingTruth {
  format: 1;
  sampleRate: number;
  /** Length of the recording in seconds. */
  seconds: number;
  /** Signal-to-noise ratio of the added white noise against the clips' mean speech power; null: no noise. */
  snrDb: number | null;
  /** Mean speech RMS of each corpus in dBFS (one gain per corpus). */
  levelDb: number;
  /** Pauses between clips were drawn uniformly from [min, max] seconds; lead/tail silence in seconds. */
  pauses: { min: number; max: number; lead: number; tail: number };
  seed: number;
  clips: TruthClip[];
}

export interface AssembleOptions {
  clips: readonly SourceClip[];
  /** Pause between clips, drawn per gap from [min, max] s (default 0.8-2.0 s). */
  pauseMin?: number;
  pauseMax?: number;
  /** Silence before the first clip and after the last (default 1 s). */
  lead?: number;
  /** White noise at this SNR in dB (against the mean power of the trimmed clips); omitted: none. */
  snrDb?: number;
  /** Mean speech RMS of each corpus's clips in dBFS (default -23): one gain per corpus (see assembleRecording). */
  levelDb?: number;
  /** A clip is trimmed to its 10 ms windows within this many dB of its loudest (default TRIM_DB). */
  trimDb?: number;
  /** Repeat the clip list (in the same order, new pauses) until the recording is at least this long, in seconds. */
  targetSeconds?: number;
  seed?: number;
}

/** A 10 ms window counts as speech when its RMS is within this many dB of the clip's loudest window. */
export const TRIM_DB = 35;
export const ASSEMBLE_DEFAULTS = { pauseMin: 0.8, pauseMax: 2.0, lead: 1.0, seed: 1, levelDb: -23, trimDb: TRIM_DB } as const;
const WINDOW = TARGET_SAMPLE_RATE / 100;

/**
 * The 4 MELD clips in the assets. They are MELD *test* utterances (test/model/whisper-real.test.ts: dia0_utt0 says
 * "Why do all you're coffee mugs have numbers on the bottom?", test dialogue 0; train and dev reuse the ids for other
 * utterances). A MELD.Raw clip runs on over the next utterances of its dialogue that end within its length, so the
 * words are those rows' (test_sent_emo.csv, dialogues 0, 100, 101; test/fixtures/meld-test-rows.csv) and the label
 * is the named utterance's.
 */
export const MELD_CLIPS: readonly Omit<SourceClip, 'audio'>[] = [
  { source: 'meld:dia0_utt0', label: 'surprise', text: 'Why do all you’re coffee mugs have numbers on the bottom?' },
  { source: 'meld:dia100_utt1', label: 'neutral', text: 'You guys feel safe. Right?' },
  { source: 'meld:dia100_utt5', label: 'sadness', text: 'Okay, I’m sorry. I didn’t mean to scare you. I just have to clean that up.' },
  { source: 'meld:dia101_utt0', label: 'joy', text: 'Hey! Hey.' },
];

/**
 * `count` clips from the assets folder (../shared/assets), drawn with `seed` in turn from each corpus in `corpora`.
 * RAVDESS is read only for actors 01-18 (19-24 are kept unseen and are refused if present).
 */
export function pickClips(assetsDir: string, options: { count: number; corpora?: readonly AssembleCorpus[]; seed?: number }): SourceClip[] {
  const corpora = options.corpora ?? ['ravdess', 'emodb', 'meld'];
  const rand = mulberry32(options.seed ?? ASSEMBLE_DEFAULTS.seed);
  const pools: SourceClip[][] = corpora.map((c) => {
    if (c === 'ravdess') {
      const ds = readRAVDESS(join(assetsDir, 'ravdess'));
      return ds.items
        .filter((it) => Number((it.speaker ?? '').replace(/\D/g, '')) <= 18)
        .map((it) => ({ source: `ravdess:${it.id}`, audio: it.audio!, label: ds.classNames[it.label]!, text: it.text }));
    }
    if (c === 'emodb') {
      const ds = readEmoDB(join(assetsDir, 'emodb'));
      return ds.items.map((it) => ({ source: `emodb:${it.id}`, audio: it.audio!, label: ds.classNames[it.label]!, text: it.text }));
    }
    return MELD_CLIPS.map((m) => ({ ...m, audio: join(assetsDir, 'meld-audio', `${m.source.slice(5)}.wav`) }));
  });
  const out: SourceClip[] = [];
  for (let i = 0; out.length < options.count && pools.some((p) => p.length); i++) {
    const pool = pools[i % pools.length]!;
    if (!pool.length) continue;
    out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
  }
  return out;
}

/** [first, last) sample of a clip's speech: the outermost 10 ms windows within TRIM_DB of its loudest window. */
export function speechBounds(x: Float32Array, trimDb = TRIM_DB): [number, number] {
  const n = Math.floor(x.length / WINDOW);
  const rms = new Float64Array(n);
  let loudest = 0;
  for (let w = 0; w < n; w++) {
    let s = 0;
    for (let i = w * WINDOW; i < (w + 1) * WINDOW; i++) s += x[i]! * x[i]!;
    rms[w] = Math.sqrt(s / WINDOW);
    loudest = Math.max(loudest, rms[w]!);
  }
  const floor = loudest * 10 ** (-trimDb / 20);
  let a = 0;
  while (a < n && rms[a]! < floor) a++;
  let b = n - 1;
  while (b > a && rms[b]! < floor) b--;
  return n ? [a * WINDOW, (b + 1) * WINDOW] : [0, x.length];
}

/** [first, last) sample of the speech Silero hears in `x` alone (fresh state, 0.5 s of silence around it), or null. */
async function heardAlone(vad: SileroVad, x: Float32Array): Promise<[number, number] | null> {
  const lead = TARGET_SAMPLE_RATE / 2;
  const padded = new Float32Array(lead + x.length + lead + VAD_FRAME);
  padded.set(x, lead);
  vad.reset();
  const seg = new Segmenter({ ...VAD_DEFAULTS, minSilence: 1e6, pad: 0 }); // one span: first to last speech frame
  const spans = [];
  for (let i = 0; i + VAD_FRAME <= padded.length; i += VAD_FRAME)
    spans.push(...seg.push(await vad.next(padded.subarray(i, i + VAD_FRAME))));
  spans.push(...seg.finish());
  if (!spans.length) return null;
  return [Math.max(0, spans[0]!.start - lead), Math.min(x.length, spans.at(-1)!.end - lead)];
}

/**
 * Lays the clips down and streams the recording to `write` in pieces (so an hour costs the memory of its clips,
 * not of the hour): lead silence, clip, pause, clip, ..., tail silence, noise added throughout. Returns the truth.
 */
export async function assembleRecording(options: AssembleOptions, write: (samples: Float32Array) => void): Promise<RecordingTruth> {
  const o = { ...ASSEMBLE_DEFAULTS, ...options };
  if (!o.clips.length) throw new Error('assembleRecording: no clips given');
  if (!(o.pauseMin >= 0 && o.pauseMax >= o.pauseMin))
    throw new Error(`assembleRecording: pauses must satisfy 0 <= min <= max, got ${o.pauseMin}-${o.pauseMax}`);
  const rate = TARGET_SAMPLE_RATE;
  const cache = new Map<string, Float32Array>();
  const heard = new Map<string, [number, number] | null>();
  const vad = await SileroVad.open();
  const corpusOf = (c: SourceClip) => c.source.split(':')[0]!;
  const rmsOf = (x: Float32Array) => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
    return Math.sqrt(s / Math.max(1, x.length));
  };
  const corpusRms = new Map<string, number[]>();
  for (const c of o.clips) {
    if (cache.has(c.audio)) continue;
    const x = loadAudio(c.audio, { sampleRate: rate });
    const [a, b] = speechBounds(x, o.trimDb);
    const speech = x.slice(a, b);
    cache.set(c.audio, speech);
    heard.set(c.audio, await heardAlone(vad, speech));
    corpusRms.set(corpusOf(c), [...(corpusRms.get(corpusOf(c)) ?? []), rmsOf(speech)]);
  }
  // one gain per corpus: its clips' mean speech RMS at o.levelDb (a recording is one microphone: within a corpus
  // the loud and soft clips keep their difference, across corpora the recording levels are evened out), limited so
  // that no clip clips
  const gains = new Map<string, number>();
  for (const [corpus, rms] of corpusRms) gains.set(corpus, 10 ** (o.levelDb / 20) / (rms.reduce((a, b) => a + b, 0) / rms.length));
  for (const c of o.clips) {
    const x = cache.get(c.audio)!;
    let peak = 0;
    for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]!));
    gains.set(corpusOf(c), Math.min(gains.get(corpusOf(c))!, 0.99 / Math.max(peak, 1e-9)));
  }
  let power = 0;
  for (const c of new Map(o.clips.map((c) => [c.audio, c])).values()) {
    const x = cache.get(c.audio)!;
    const g = gains.get(corpusOf(c))!;
    for (let i = 0; i < x.length; i++) x[i]! *= g;
    power += rmsOf(x) ** 2;
  }
  power /= cache.size;
  const noiseStd = o.snrDb === undefined ? 0 : Math.sqrt(power / 10 ** (o.snrDb / 10));
  const rand = mulberry32(o.seed);
  const noise = gaussian(mulberry32(o.seed + 1_000_003));
  let at = 0; // samples written
  const emit = (x: Float32Array) => {
    if (noiseStd) for (let i = 0; i < x.length; i++) x[i]! += noiseStd * noise();
    write(x);
    at += x.length;
  };
  const silence = (seconds: number) => {
    let left = Math.round(seconds * rate);
    while (left > 0) {
      const n = Math.min(left, rate);
      emit(new Float32Array(n));
      left -= n;
    }
  };
  const clips: TruthClip[] = [];
  silence(o.lead);
  for (let round = 0; round === 0 || (o.targetSeconds !== undefined && at / rate < o.targetSeconds); round++) {
    for (const c of o.clips) {
      if (clips.length) silence(o.pauseMin + rand() * (o.pauseMax - o.pauseMin));
      const speech = cache.get(c.audio)!;
      const h = heard.get(c.audio);
      clips.push({
        source: c.source,
        label: c.label,
        text: c.text,
        start: at / rate,
        end: (at + speech.length) / rate,
        speechStart: h ? (at + h[0]) / rate : null,
        speechEnd: h ? (at + h[1]) / rate : null,
      });
      emit(speech.slice());
    }
  }
  silence(o.lead);
  await vad.dispose();
  return {
    format: 1,
    sampleRate: rate,
    seconds: at / rate,
    snrDb: o.snrDb ?? null,
    levelDb: o.levelDb,
    pauses: { min: o.pauseMin, max: o.pauseMax, lead: o.lead, tail: o.lead },
    seed: o.seed,
    clips,
  };
}

/** A 16 kHz mono 16-bit PCM WAV written as the samples arrive; the sizes are patched in at `close()`. */
export class WavWriter {
  private readonly fd: number;
  private bytes = 0;
  constructor(
    readonly path: string,
    readonly sampleRate = TARGET_SAMPLE_RATE,
  ) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, wavHeader(0, sampleRate));
  }
  write(x: Float32Array): void {
    const b = Buffer.alloc(x.length * 2);
    for (let i = 0; i < x.length; i++) b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(x[i]! * 32767))), i * 2);
    writeSync(this.fd, b);
    this.bytes += b.length;
  }
  close(): void {
    writeSync(this.fd, wavHeader(this.bytes, this.sampleRate), 0, 44, 0);
    closeSync(this.fd);
  }
}

function wavHeader(dataBytes: number, rate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Files written by `writeAssembled`: the audio in each format asked for, the truth, and the clips' words as SRT. */
export interface AssembledFiles {
  /** Format -> path. */
  audio: Record<string, string>;
  truthFile: string;
  srt: string;
  truth: RecordingTruth;
}

/**
 * Assembles into `dir`: `<name>.wav` (16 kHz mono 16-bit), then `<name>.<fmt>` for each other format through ffmpeg
 * (mp3, m4a, ...), `<name>.truth.json` and `<name>.srt` (each clip's words over its span, for `--text-from`).
 */
export async function writeAssembled(
  dir: string,
  name: string,
  options: AssembleOptions,
  formats: readonly string[] = ['wav'],
): Promise<AssembledFiles> {
  mkdirSync(dir, { recursive: true });
  const wav = join(dir, `${name}.wav`);
  const w = new WavWriter(wav);
  let truth: RecordingTruth;
  try {
    truth = await assembleRecording(options, (x) => w.write(x));
  } finally {
    w.close();
  }
  const audio: Record<string, string> = { wav };
  for (const f of formats.filter((f) => f !== 'wav')) {
    const out = join(dir, `${name}.${f}`);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', wav, ...(f === 'm4a' ? ['-c:a', 'aac'] : []), out], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`ffmpeg could not write ${basename(out)}: ${r.error?.message ?? r.stderr.trim()}`);
    audio[f] = out;
  }
  const truthFile = join(dir, `${name}.truth.json`);
  writeFileSync(truthFile, JSON.stringify(truth, null, 1) + '\n');
  const srt = join(dir, `${name}.srt`);
  writeFileSync(srt, truth.clips.map((c, i) => `${i + 1}\n${formatSrtTime(c.start)} --> ${formatSrtTime(c.end)}\n${c.text}\n`).join('\n'));
  return { audio, truthFile, srt, truth };
}
