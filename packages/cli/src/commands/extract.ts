// `emofuse extract`: turns a dataset into cached token features (text and audio encoders), resumably.

import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  createAudioEncoder,
  createTextEncoder,
  DATASETS,
  ENCODER_DEVICES,
  extractFeatures,
  modelSettings,
  resolveEncoderDevice,
  usesDevice,
  partFolder,
  resolveShard,
  openDataset,
  parseAugmentList,
  refuseAugmentWith,
  transcribeDataset,
  type Augmentation,
  type AudioEncoder,
  type Dataset,
  type TextEncoder,
} from '@emofuse/model';
import { asUserError, int, userErrors } from '../options.ts';
import { formatDuration, table, UserError } from '../output.ts';
import { checkOutFolder, signalExitCode, stopOnSignals } from '../signals.ts';

interface ExtractOptions {
  dataset: string;
  data?: string;
  textEncoder: string;
  audioEncoder: string;
  textOnly?: boolean;
  transcribe?: boolean;
  asr: string;
  out: string;
  batchSize: string;
  shardSize: string;
  shard?: string;
  audioCache?: string;
  device: string;
  limit?: string;
  limitPerSplit?: string;
  augment?: string;
  json?: boolean;
  progress: boolean;
}

function defaultData(kind: string): string | undefined {
  if (kind === 'emodb') return `${modelSettings.assetsDir}/emodb`;
  return undefined;
}

export function registerExtract(program: Command): void {
  program
    .command('extract')
    .description('encode a dataset into a feature cache (float16 safetensors shards + index.json), resumably')
    .requiredOption('--dataset <kind>', `dataset layout: ${DATASETS.join(', ')}`)
    .option('--data <path>', 'dataset folder or manifest file (emodb default: $EMOFUSE_ASSETS/emodb)')
    .option('--text-encoder <spec>', "text encoder: 'hash' (built in) or 'bert[:<model id or folder>]'", 'hash')
    .option(
      '--audio-encoder <spec>',
      "audio encoder: 'logmel' or 'speech' (built in), 'ast[:<model id or folder>]' or 'whisper[:<model id or folder>][@<layer>][+full]'",
      'logmel',
    )
    .option('--transcribe', "fill empty 'text' fields by transcribing the audio with --asr (cached in <out>/transcripts.json: paid once)")
    .option('--asr <model>', 'Whisper model (id or folder) for --transcribe', 'Xenova/whisper-tiny.en')
    .option('--text-only', 'no audio (e.g. MELD without the MELD.Raw media): a cache with no audio tokens (trains --fusion text)')
    .requiredOption('--out <cache>', 'cache folder to write (an interrupted extraction into it resumes)')
    .option('--batch-size <n>', 'utterances per encoder call', '16')
    .option('--shard-size <n>', 'utterances per safetensors shard (the resume granularity)', '256')
    .option(
      '--shard <K/N>',
      "only part K of N (utterances K, K+N, ...) into <out>/part-K-of-N, for 'emofuse cache merge'; 'auto' or 'auto/N' takes K " +
        '(and N) from a Kubernetes Indexed Job or a Slurm job array',
    )
    .option(
      '--device <where>',
      `where the bert / ast / whisper encoders run: ${ENCODER_DEVICES.join(', ')} (auto: webgpu on a hardware GPU adapter)`,
      'auto',
    )
    .option(
      '--audio-cache <dir>',
      'keep the decoded 16 kHz clips in <dir> (64 KB per second of audio): extracting with another audio encoder then skips decoding',
    )
    .option('--limit <n>', 'only the first n utterances (a quick look)')
    .option('--limit-per-split <n>', 'only the first n utterances of each split (a small run that still has train and dev)')
    .option(
      '--augment <list>',
      "audio augmentation of the train split only: one extra utterance per item for each train clip, e.g. 'speed:0.9,speed:1.1,noise:20' " +
        '(speed:F resamples by F, tempo and pitch together; noise:SNR adds white noise at SNR dB); id <id>~speed0.9, its own speaker',
    )
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Datasets:
  controlled  the generated bimodal benchmark ('emofuse make-dataset controlled --out <dir>')
  manifest    CSV or JSONL with id, text, audio, label[, split, speaker]; audio relative to the manifest
  emodb       EmoDB's wav/SSTTTEV.wav layout (labels from file names, speaker-independent splits)
  meld        MELD's {train,dev,test}_sent_emo.csv + MELD.Raw media (.mp4 needs ffmpeg); --text-only without media
  ravdess     RAVDESS speech: Actor_XX/03-01-EE-II-SS-RR-AA.wav or .flac (labels, text, actors from the names;
              train actors 01-16, dev 17-18, test 19-24; song files skipped)
  crema-d     CREMA-D: AudioWAV/AAAA_SSS_EEE_LL.wav (labels, sentence, actor from the names; train actors
              1001-1071, dev 1072-1081, test 1082-1091)

Encoders (settings: EMOFUSE_MODELS models folder, EMOFUSE_OFFLINE=1 no downloads, EMOFUSE_CACHE download cache):
  hash        frozen feature hashing of BERT WordPiece tokens, 256-d (no download)
  logmel      AST's log-mel preprocessing in 16-frame / 10-frame-stride time patches, 256-d (no download)
  speech      a real pretrained speech embedding (openWakeWord's ONNX models in $EMOFUSE_ASSETS), 96-d per 80 ms
  bert[:id]   last hidden state of a BERT-family model through transformers.js (default Xenova/bert-base-uncased)
  ast[:id]    AST patch tokens averaged over frequency per time column (default Xenova/ast-finetuned-audioset-10-10-0.4593)
  whisper[:id][@layer][+full]  one Whisper encoder layer's states over the real audio, 4 frames averaged: 12.5 tokens/s
              (default Xenova/whisper-tiny.en @2; also Xenova/whisper-base, multilingual; scripts/convert_whisper.py
              [--model base] writes them offline). The encoder runs on the clip's own frames only (sliced window,
              stopping at the layer); +full runs Whisper's whole 30 s window as before (slower; other features)

Broken audio files (empty, corrupt, truncated, silent, missing) are skipped, counted and listed in index.json.
Stop with Ctrl-C (or kill it): the same command continues after the last complete shard.

Examples:
  emofuse make-dataset controlled --out data/controlled
  emofuse extract --dataset controlled --data data/controlled --out cache/controlled
  emofuse extract --dataset emodb --out cache/emodb
  emofuse extract --dataset meld --data MELD/ --text-only \
--text-encoder bert:sentence-transformers/all-MiniLM-L6-v2 --out cache/meld-minilm   # after scripts/convert_minilm.py
  emofuse extract --dataset manifest --data my.csv --text-encoder bert --audio-encoder ast --out cache/mine
  emofuse extract --dataset emodb --shard 1/3 --out cache/emodb     # one of 3 workers; then: emofuse cache merge cache/emodb`,
    )
    .action(async (opts: ExtractOptions) => {
      checkOutFolder(opts.out);
      const data = opts.data ?? defaultData(opts.dataset);
      if (!data) throw new UserError(`--data is required for --dataset ${opts.dataset} (the dataset folder or manifest file)`);
      if (!existsSync(data)) throw new UserError(`--data ${data}: no such file or folder`);
      const batchSize = int(opts.batchSize, '--batch-size');
      const shardSize = int(opts.shardSize, '--shard-size');
      const part = opts.shard === undefined ? undefined : userErrors(() => resolveShard(opts.shard!));
      const augment: Augmentation[] | undefined =
        opts.augment === undefined ? undefined : userErrors(() => parseAugmentList(opts.augment!));
      if (augment) userErrors(() => refuseAugmentWith(augment, { part, audio: !opts.textOnly }));
      let dataset: Dataset;
      try {
        dataset = openDataset(opts.dataset, data, { textOnly: opts.textOnly });
      } catch (err) {
        return asUserError(err);
      }
      for (const note of dataset.notes ?? []) console.error(`emofuse extract: note: ${note}`);
      if (opts.limit) dataset = { ...dataset, items: dataset.items.slice(0, int(opts.limit, '--limit')) };
      if (opts.limitPerSplit) {
        const n = int(opts.limitPerSplit, '--limit-per-split');
        const seen = new Map<string, number>();
        dataset = {
          ...dataset,
          items: dataset.items.filter((u) => (seen.set(u.split, (seen.get(u.split) ?? 0) + 1).get(u.split) ?? 0) <= n),
        };
      }
      if (opts.transcribe) {
        if (opts.textOnly) throw new UserError('--transcribe needs the audio: drop --text-only');
        try {
          const t = await transcribeDataset(dataset, {
            asr: opts.asr,
            cacheFile: join(opts.out, 'transcripts.json'),
            onProgress: opts.progress ? (done, total) => process.stderr.write(`\rtranscribe ${done}/${total}`) : undefined,
          });
          if (opts.progress && t.missing) process.stderr.write('\n');
          dataset = t.dataset;
          if (!opts.json)
            console.log(
              `transcribed ${t.transcribed} of ${t.missing} utterances without text (${t.cached} from ` +
                `${join(opts.out, 'transcripts.json')})`,
            );
        } catch (err) {
          throw new UserError(`--transcribe: ${(err as Error).message}`);
        }
      }
      let textEncoder: TextEncoder;
      let audioEncoder: AudioEncoder | null = null;
      if (!(ENCODER_DEVICES as readonly string[]).includes(opts.device))
        throw new UserError(`--device must be one of ${ENCODER_DEVICES.join(', ')}, got '${opts.device}'`);
      const networks = usesDevice(opts.textEncoder) || (!opts.textOnly && usesDevice(opts.audioEncoder));
      const { device, reason, check } = networks
        ? await resolveEncoderDevice(opts.device)
        : { device: 'cpu' as const, reason: '', check: 'refuse' as const };
      if (networks && !opts.json) console.log(`encoders on ${device} (${reason})`);
      // on webgpu each network encoder is checked against the CPU first: refused (exit 2) or, with auto, moved to the cpu
      const on = { device, check, onFallback: (why: string) => console.error(`emofuse extract: ${why}`) };
      try {
        textEncoder = await createTextEncoder(opts.textEncoder, on);
        if (!opts.textOnly) audioEncoder = await createAudioEncoder(opts.audioEncoder, on);
      } catch (err) {
        if (err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError)) throw new UserError(err.message);
        throw err;
      }
      const stop = stopOnSignals(() =>
        process.stderr.write('\nemofuse: stopping after the current shard (Ctrl-C again to quit now; the same command resumes)\n'),
      );
      const bar = new cliProgress.SingleBar(
        {
          format: 'extract {bar} {percentage}% | {value}/{total} utt | {rate} utt/s | ETA {eta_formatted} | failed {failed}',
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      const started = performance.now();
      let barStarted = false;
      const logEvery = Number(process.env.EMOFUSE_PROGRESS_SECONDS ?? 30) * 1000;
      let lastLine = started;
      let report: Awaited<ReturnType<typeof extractFeatures>>;
      try {
        report = await extractFeatures({
          dataset,
          textEncoder,
          audioEncoder,
          out: part ? partFolder(opts.out, part) : opts.out,
          part,
          audioCache: opts.audioCache,
          augment,
          batchSize,
          shardSize,
          signal: stop.signal,
          onProgress: (p) => {
            if (!opts.progress) return;
            if (!process.stderr.isTTY) {
              // Not a terminal (a log file, CI, a pipe): one line at a steady interval instead of a bar.
              const now = performance.now();
              if (now - lastLine < logEvery && p.done < p.total) return;
              lastLine = now;
              const rate = p.doneThisRun / ((now - started) / 1000);
              const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
              console.error(
                `extract: ${p.done}/${p.total} utterances, ${p.failed} failed, ${rate.toFixed(1)} utt/s, ETA ${formatDuration(eta)}`,
              );
              return;
            }
            if (!barStarted) {
              bar.start(p.total, p.done - p.doneThisRun, { rate: '-', failed: p.failed });
              barStarted = true;
            }
            const rate = p.doneThisRun / ((performance.now() - started) / 1000);
            bar.update(p.done, { rate: rate.toFixed(1), failed: p.failed });
          },
        });
      } catch (err) {
        return asUserError(err);
      } finally {
        if (barStarted) bar.stop();
        stop.dispose();
        await textEncoder.dispose?.();
        await audioEncoder?.dispose?.();
      }
      const { index } = report;
      for (const r of report.repaired) {
        console.error(`emofuse extract: ${r.file}: ${r.problem}; re-extracted from there (the shards before it passed their sha256 check)`);
      }
      const summary = {
        cache: report.cacheDir,
        complete: index.complete,
        dataset: index.dataset.name,
        textEncoder: index.text,
        audioEncoder: index.audio,
        resumedFrom: report.resumedFrom,
        repaired: report.repaired,
        processedThisRun: report.processedThisRun,
        splits: Object.fromEntries(Object.entries(index.splits).map(([k, v]) => [k, v.ids.length])),
        failures: index.failures,
        throughput: index.throughput,
        seconds: index.seconds,
      };
      if (!index.complete && stop.signal.aborted) process.exitCode = signalExitCode(stop.signal); // interrupted: not a success
      if (opts.json) {
        console.log(JSON.stringify(summary, null, 2));
        return;
      }
      console.log(
        `${index.complete ? 'wrote' : 'stopped; partial'} feature cache ` +
          `${report.cacheDir}${report.resumedFrom ? ` (resumed after ${report.resumedFrom} utterances)` : ''}`,
      );
      console.log(
        table(
          Object.entries(summary.splits).map(([k, v]) => [k, v]),
          ['split', 'utterances'],
        ),
      );
      console.log('');
      const rows: (string | number)[][] = [
        [`text  ${index.text.id}`, index.text.dim, index.throughput.text.toFixed(1), index.seconds.text.toFixed(2)],
      ];
      if (audioEncoder) {
        rows.push([`audio ${index.audio.id}`, index.audio.dim, index.throughput.audio.toFixed(1), index.seconds.audio.toFixed(2)]);
        rows.push(['audio decoding + resampling', '-', index.throughput.decode.toFixed(1), index.seconds.decode.toFixed(2)]);
      }
      console.log(table(rows, ['encoder', 'dim', 'utt/s', 'seconds']));
      if (index.failures.length) {
        console.log(`\n${index.failures.length} utterance(s) skipped (listed in ${report.cacheDir}/index.json "failures"):`);
        const counts = new Map<string, number>();
        for (const f of index.failures) counts.set(f.problem, (counts.get(f.problem) ?? 0) + 1);
        console.log('  ' + [...counts].map(([k, v]) => `${k}: ${v}`).join(', '));
        for (const f of index.failures.slice(0, 20)) console.log(`  ${f.message}`);
        if (index.failures.length > 20) console.log(`  ... and ${index.failures.length - 20} more`);
      }
      if (!index.complete) {
        console.log(`\nrun the same command again to continue`);
        if (stop.signal.aborted) {
          console.error('emofuse extract: interrupted; resume by running the same command');
          process.exitCode = signalExitCode(stop.signal);
        }
      }
    });
}
