// Filling in missing transcripts (`emofuse extract --transcribe`): every utterance with audio and an empty text is
// transcribed by a Whisper model (transformers.js, as `predict` does without --text). Transcripts are cached in a
// JSON file keyed by the recognizer's version and the sha256 of the audio file's bytes, so a rerun, a resumed
// extraction or another cache built from the same audio pays for speech recognition once.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadAudio } from '../audio/index.ts';
import { createTranscriber, DEFAULT_ASR, type Transcriber } from '../encoders/asr.ts';
import type { Dataset } from './types.ts';

export interface TranscribeOptions {
  /** Whisper model id or folder (default Xenova/whisper-tiny.en). */
  asr?: string;
  /** The JSON cache of transcripts (created when missing). */
  cacheFile: string;
  /** Called after each transcribed utterance: done of total to transcribe. */
  onProgress?: (done: number, total: number) => void;
  /** A transcriber to use instead of loading `asr` (tests). */
  transcriber?: Transcriber;
}

export interface TranscribeReport {
  /** The dataset with every empty text filled in. */
  dataset: Dataset;
  /** Utterances that had no text. */
  missing: number;
  /** Of those, how many were transcribed now (the rest came from the cache). */
  transcribed: number;
  cached: number;
}

interface CacheFile {
  version: 1;
  /** `${asr}:${sha256 of the audio file}` -> transcript */
  transcripts: Record<string, string>;
}

function readCache(file: string): CacheFile {
  if (!existsSync(file)) return { version: 1, transcripts: {} };
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    if (c.version === 1 && c.transcripts && typeof c.transcripts === 'object') return c;
  } catch {
    /* unreadable: start over below */
  }
  throw new Error(`${file} is not a transcript cache written by emofuse (delete it to transcribe again)`);
}

function writeCache(file: string, cache: CacheFile): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(cache, null, 1));
  renameSync(file + '.tmp', file);
}

/** Transcribes the utterances of `dataset` whose text is empty (and that have audio); see the file comment. */
export async function transcribeDataset(dataset: Dataset, options: TranscribeOptions): Promise<TranscribeReport> {
  const asr = options.asr ?? DEFAULT_ASR;
  const todo = dataset.items.flatMap((it, i) => (it.text.trim() === '' && it.audio ? [i] : []));
  const items = dataset.items.map((it) => ({ ...it }));
  if (!todo.length) return { dataset, missing: 0, transcribed: 0, cached: 0 };
  const cache = readCache(options.cacheFile);
  let transcriber = options.transcriber ?? null;
  let transcribed = 0;
  let cached = 0;
  try {
    for (const [n, i] of todo.entries()) {
      const item = items[i]!;
      const key = `${transcriber?.id ?? asr}:${createHash('sha256').update(readFileSync(item.audio!)).digest('hex')}`;
      let text = cache.transcripts[key];
      if (text === undefined) {
        transcriber ??= await createTranscriber(asr);
        [text] = await transcriber.transcribe([loadAudio(item.audio!, { sampleRate: 16_000 })]);
        cache.transcripts[key] = text!;
        transcribed++;
        if (transcribed % 16 === 0) writeCache(options.cacheFile, cache);
      } else {
        cached++;
      }
      item.text = text!;
      options.onProgress?.(n + 1, todo.length);
    }
  } finally {
    if (transcribed) writeCache(options.cacheFile, cache);
    if (!options.transcriber) await transcriber?.dispose();
  }
  return { dataset: { ...dataset, items }, missing: todo.length, transcribed, cached };
}
