// The flags several commands share (data, backend, model and training), their parsing into the model's options,
// and the mapping of the model's input errors to user errors. The training flags are the model's TRAIN_SETTINGS
// (packages/model/src/train/settings.ts: flag, help, default, parser), added and parsed here in one loop; every
// other default comes from the model's constants (DEFAULT_BACKEND): change a default there, not here.

import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import {
  AudioError,
  DEFAULT_BACKEND,
  DEFAULT_MODEL,
  DataError,
  DatasetError,
  EncoderDeviceError,
  EncoderSpecError,
  FeatureCacheError,
  FusionConfigError,
  ModelNotFoundError,
  PredictError,
  SettingError,
  SynthesiserMissingError,
  TRAIN_DEFAULTS,
  UnknownBackendError,
  corpusName,
  defaultModelMissing,
  describeBackends,
  joinFeatureSets,
  openBackend as openModelBackend,
  openFeatureCache,
  parseInteger,
  parseNumber,
  parsePositive,
  parseSettings,
  readArraysFile,
  readThroughLabelMap,
  syntheticBimodal,
  trainSettings,
  withJoinedSplits,
  type Backend,
  type FeatureSet,
  type TrainOptions,
  type TrainSettingName,
} from '@emofuse/model';
import { UserError } from './output.ts';

/** The model's errors about its input: their messages name the file, field or setting and the fix. */
const INPUT_ERRORS = [
  AudioError,
  DataError,
  DatasetError,
  EncoderDeviceError,
  EncoderSpecError,
  FeatureCacheError,
  FusionConfigError,
  ModelNotFoundError,
  PredictError,
  SettingError,
  SynthesiserMissingError,
  UnknownBackendError,
];

/** The model's input errors as user errors (exit 2, no stack trace); anything else is rethrown as it is. */
export function asUserError(err: unknown): never {
  if (INPUT_ERRORS.some((E) => err instanceof E)) throw new UserError((err as Error).message);
  throw err;
}

/** `f()`, with asUserError on what it throws. */
export function userErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    return asUserError(err);
  }
}

/** An integer flag in [min, max] (the model's parser, whose messages the training flags share). */
export function int(v: string, flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  return userErrors(() => parseInteger(v, flag, min, max));
}

/** A number > 0 (learning rates). */
export function positive(v: string, flag: string): number {
  return userErrors(() => parsePositive(v, flag));
}

export function num(v: string, flag: string, min = 0): number {
  return userErrors(() => parseNumber(v, flag, min));
}

// ------------------------------------------------------------------------------------------ --backend

export function addBackendOption(cmd: Command): Command {
  return cmd.option('--backend <name>', describeBackends(), DEFAULT_BACKEND);
}

export function openBackend(name: string): Promise<Backend> {
  return openModelBackend(name, '--backend').catch(asUserError);
}

// ------------------------------------------------------------------------------------------ data

export interface DataFlags {
  features?: string;
  synthetic?: boolean;
  syntheticSeed: string;
}

export function addDataOptions(cmd: Command): Command {
  return cmd
    .option(
      '--features <path>',
      "a feature cache folder (from 'emofuse extract') or a JSON arrays file (see README); several, comma-separated, are joined " +
        'into one (same encoders)',
    )
    .option('--synthetic', 'the generated bimodal task instead (4 classes = 2 text cues x 2 audio cues; no files needed)')
    .option('--synthetic-seed <n>', 'seed of the generated task', '1');
}

export function loadFeatures(f: DataFlags): { features: FeatureSet; source: string } {
  if (f.synthetic && f.features) throw new UserError('give either --features <path> or --synthetic, not both');
  if (f.synthetic) {
    const seed = int(f.syntheticSeed, '--synthetic-seed', 0);
    return { features: syntheticBimodal({ seed }), source: `synthetic bimodal task (seed ${seed})` };
  }
  if (!f.features)
    throw new UserError("no data: pass --features <cache folder | arrays.json> (make one with 'emofuse extract'), or --synthetic");
  // several sources, comma-separated (a path that exists as given is one source, commas and all)
  const paths = existsSync(f.features)
    ? [f.features]
    : f.features
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
  for (const p of paths) if (!existsSync(p)) throw new UserError(`--features ${p}: no such file or folder`);
  const one = (p: string) =>
    statSync(p).isDirectory()
      ? { features: openFeatureCache(p), source: `feature cache ${p}` }
      : { features: readArraysFile(p), source: `arrays file ${p}` };
  try {
    if (paths.length === 1) return one(paths[0]!);
    const sources = paths.map((p) => ({ path: p, features: one(p).features }));
    const features = joinFeatureSets(sources.map((s) => ({ corpus: uniqueCorpus(s, sources), features: s.features })));
    return { features, source: `joined features ${sources.map((s) => `${s.path} (${uniqueCorpus(s, sources)})`).join(' + ')}` };
  } catch (err) {
    return asUserError(err);
  }
}

/** A source's corpus name: its dataset's name, or its path where two sources share that name. */
function uniqueCorpus(s: { path: string; features: FeatureSet }, all: readonly { path: string; features: FeatureSet }[]): string {
  const nameOf = (o: { path: string; features: FeatureSet }) => corpusName(o.features, basename(o.path).replace(/\.json$/i, ''));
  return all.filter((o) => nameOf(o) === nameOf(s)).length > 1 ? s.path : nameOf(s);
}

// ------------------------------------------------------------------------------------------ file arguments

/** The flags whose value is a path to read (a file, or a folder where the flag allows one), under commander's key. */
export const INPUT_PATH_FLAGS: readonly (readonly [key: string, flag: string])[] = [
  ['features', '--features'],
  ['checkpoint', '--checkpoint'],
  ['data', '--data'],
  ['manifest', '--manifest'],
  ['audio', '--audio'],
  ['labelMap', '--label-map'],
  ['textFrom', '--text-from'],
];

/** The positional arguments that are paths to read (analyze's recording, cache merge's part folders), by name. */
export const INPUT_PATH_ARGUMENTS: readonly string[] = ['recording', 'parts'];

/** What a path that is neither a file nor a folder is, in words; null for a file, a folder or a missing path. */
export function specialFileKind(path: string): string | null {
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(path); // stat never opens the path, so a FIFO cannot block here
  } catch {
    return null; // missing or unreadable: the command's own check says so
  }
  if (!st || st.isFile() || st.isDirectory()) return null;
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Refuses, before a command starts, every input path (INPUT_PATH_FLAGS, --features also each of its comma-separated
 * sources, and the INPUT_PATH_ARGUMENTS) that names a FIFO, a socket or a device: reading one would block or never end.
 */
export function refuseSpecialFiles(command: Command): void {
  const opts = command.opts() as Record<string, unknown>;
  const named: [label: string, path: string, folderToo: boolean][] = [];
  for (const [key, flag] of INPUT_PATH_FLAGS) {
    const value = opts[key];
    if (typeof value !== 'string' || value === '') continue;
    const paths = key === 'features' && !existsSync(value) ? value.split(',').map((p) => p.trim()) : [value];
    for (const p of paths) named.push([`${flag} ${p}`, p, key === 'features' || key === 'data']);
  }
  command.registeredArguments.forEach((arg, i) => {
    if (!INPUT_PATH_ARGUMENTS.includes(arg.name())) return;
    const value: unknown = command.processedArgs[i];
    for (const p of Array.isArray(value) ? value : [value]) if (typeof p === 'string') named.push([`<${arg.name()}> ${p}`, p, true]);
  });
  for (const [label, path, folderToo] of named) {
    const kind = path ? specialFileKind(path) : null;
    if (kind) throw new UserError(`${label} is ${kind}, not a file: give a regular file${folderToo ? ' or folder' : ''}`);
  }
}

// ------------------------------------------------------------------------------------------ model and training

/** Commander's values of addTrainOptions: each training setting's text (a switch: boolean) under its setting's name. */
export type TrainFlags = DataFlags & Partial<Record<TrainSettingName, string | boolean>> & { backend: string; progress: boolean };

/**
 * --backend, one flag per training setting (TRAIN_SETTINGS) and --no-progress; without the settings of one run
 * (`perRun`: --fusion, ...) when `perRun` is false, as for ablate.
 */
export function addTrainOptions(cmd: Command, perRun = true): Command {
  addBackendOption(cmd);
  for (const [, s] of trainSettings()) {
    if (s.perRun && !perRun) continue;
    const shown =
      s.default === undefined || !s.parse ? undefined : (s.show ?? String)(s.store ? s.store(s.default) : (s.default as string | number));
    cmd.option(s.arg ? `${s.flag} ${s.arg}` : s.flag, s.help, shown);
  }
  return cmd.option('--no-progress', 'no progress bar');
}

/** The flags of addTrainOptions as TrainOptions (without the settings of one run when `perRun` is false, as for ablate). */
export function parseTrainFlags(o: TrainFlags, outDir: string, perRun = true): TrainOptions {
  const names = trainSettings()
    .filter(([, s]) => perRun || !s.perRun)
    .map(([name]) => name);
  return { ...(userErrors(() => parseSettings(o, names)) as Omit<TrainOptions, 'outDir'>), outDir };
}

/**
 * A warning on stderr naming each class without one example in the train split (read through the label map, as train
 * reads it): the model is never shown it, so it can never predict it. A warning, not an error: a label map or a joined
 * cache may leave a class out of training on purpose, and dev/test scores still count it.
 */
export function warnUntrainedClasses(features: FeatureSet, o: Pick<TrainOptions, 'labelMap' | 'trainSplit'>): void {
  const name = o.trainSplit ?? TRAIN_DEFAULTS.trainSplit;
  let mapped: FeatureSet;
  try {
    mapped = readThroughLabelMap(withJoinedSplits(features, [name]), o.labelMap);
  } catch {
    return; // train reports a bad label map or split name itself
  }
  const split = mapped.splits[name];
  if (!split) return;
  const counts = mapped.classNames.map(() => 0);
  for (const l of split.labels) if (l >= 0 && l < counts.length) counts[l]! += 1;
  const empty = mapped.classNames.filter((_, c) => counts[c] === 0).map((c) => `'${c}'`);
  if (!empty.length) return;
  console.error(
    `warning: ${empty.length === 1 ? 'class' : 'classes'} ${empty.join(', ')} ${empty.length === 1 ? 'has' : 'have'} no ` +
      `examples in the '${name}' split: the model cannot learn to predict ${empty.length === 1 ? 'it' : 'them'}; add ` +
      'examples, or map it to another class (or drop it) with --label-map',
  );
}

/** The --checkpoint option of predict / analyze: the file given, else the shipped model, named (and its licence) unless quiet. */
export function checkpointOrDefault(given: string | undefined, quiet = false): string {
  if (given) return given;
  if (!existsSync(DEFAULT_MODEL.file)) throw new UserError(defaultModelMissing());
  if (!quiet) console.error(`model: ${DEFAULT_MODEL.summary}\nlicence: ${DEFAULT_MODEL.licence}\n`);
  return DEFAULT_MODEL.file;
}
