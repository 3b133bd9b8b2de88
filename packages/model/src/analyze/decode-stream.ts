// Any container ffmpeg reads, as 16 kHz mono float32 in pieces as ffmpeg produces them
// (`ffmpeg -i f -vn -f f32le -ac 1 -ar 16000 -`): the caller pulls the next piece only when it is done with the last,
// so the pipe applies back-pressure and memory stays at a pipe buffer (64 KiB) however long the file.
// Before decoding, ffprobe says whether the file is media at all and has an audio stream, and how long it is (for
// the ETA and to notice a truncated file); every problem is an AnalyzeError naming the file and the fix.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { AnalyzeError } from './errors.ts';

export const DECODE_RATE = 16_000;

export interface MediaInfo {
  /** Seconds, from the container (null when it does not say). */
  duration: number | null;
  codec: string;
}

function need(tool: 'ffmpeg' | 'ffprobe'): void {
  const r = spawnSync(tool, ['-version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0)
    throw new AnalyzeError(
      '',
      `analyze decodes recordings with '${tool}', which was not found: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)`,
    );
}

/** Checks that `file` exists, is not empty, is media ffmpeg reads and has an audio stream. */
export function probeMedia(file: string): MediaInfo {
  if (!existsSync(file)) throw new AnalyzeError(file, 'file not found');
  const st = statSync(file);
  if (st.isDirectory()) throw new AnalyzeError(file, 'is a folder (give a recording, or a folder of recordings as the only argument)');
  if (st.size === 0) throw new AnalyzeError(file, 'file is empty (0 bytes)');
  need('ffprobe');
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name:format=duration', '-of', 'json', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const why = (r.stderr || '').trim().split('\n').pop() ?? '';
    throw new AnalyzeError(
      file,
      `not a recording ffmpeg can read (${why.replace(`${file}: `, '') || 'unknown format'}): give an audio or video file (wav, ` +
        `mp3, m4a, flac, ogg, mp4, webm, ...)`,
    );
  }
  const info = JSON.parse(r.stdout || '{}') as { streams?: { codec_type?: string; codec_name?: string }[]; format?: { duration?: string } };
  const audio = (info.streams ?? []).find((s) => s.codec_type === 'audio');
  if (!audio) {
    const kinds = [...new Set((info.streams ?? []).map((s) => s.codec_type))].join(', ');
    throw new AnalyzeError(file, `has no audio stream${kinds ? ` (only ${kinds})` : ''}: nothing to analyse`);
  }
  const d = Number(info.format?.duration);
  const missing = wavMissingBytes(file);
  if (missing)
    throw new AnalyzeError(
      file,
      `is truncated: its WAV header declares ${missing.declared} bytes of audio, ${missing.present} are present (copy it again, ` +
        `or repair it: ffmpeg -i in.wav out.wav)`,
    );
  return { duration: Number.isFinite(d) && d > 0 ? d : null, codec: audio.codec_name ?? '?' };
}

/**
 * For a RIFF/WAVE file: the data chunk's declared and present sizes when fewer bytes are present than declared (ffprobe takes the length
 * from the file size).
 */
function wavMissingBytes(file: string): { declared: number; present: number } | null {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') return null;
    let at = 12;
    while (at + 8 <= n) {
      const size = head.readUInt32LE(at + 4);
      if (head.toString('latin1', at, at + 4) === 'data') {
        const present = statSync(file).size - (at + 8);
        return size !== 0xffffffff && size !== 0 && present < size ? { declared: size, present } : null;
      }
      at += 8 + size + (size & 1);
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The decoded samples of `file` in pieces (each a fresh Float32Array, any length). Throws AnalyzeError when ffmpeg
 * fails; `warnings` gets what ffmpeg reported about damaged data while still decoding.
 */
export async function* decodeStream(file: string, warnings?: (line: string) => void): AsyncGenerator<Float32Array> {
  need('ffmpeg');
  const child = spawn(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-i', file, '-vn', '-f', 'f32le', '-ac', '1', '-ar', String(DECODE_RATE), '-'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  let carry: Buffer | null = null; // a float split across two pipe reads
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      const bytes: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const whole = bytes.length - (bytes.length % 4);
      carry = whole < bytes.length ? Buffer.from(bytes.subarray(whole)) : null;
      if (!whole) continue;
      const out = new Float32Array(whole / 4);
      Buffer.from(out.buffer).set(bytes.subarray(0, whole));
      yield out;
    }
    finished = true;
  } finally {
    if (!finished) child.kill('SIGKILL');
  }
  const code = await exited;
  const lines = stderr.trim().split('\n').filter(Boolean);
  if (code !== 0) throw new AnalyzeError(file, `ffmpeg could not decode it (exit ${code}): ${lines.slice(-3).join(' | ') || 'no message'}`);
  for (const l of lines.slice(0, 5)) warnings?.(l);
}
