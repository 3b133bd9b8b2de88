// The training settings, one entry each in TRAIN_SETTINGS: the flag that spells it, its help, its default, how a
// typed value is parsed and checked, and what --resume may do with it. Everything else is derived from that table:
// - the CLI's shared training flags (addTrainOptions in packages/cli/src/options.ts) and their parsing (parseSettings);
// - TRAIN_DEFAULTS (./defaults.ts), what train() uses for a setting left out;
// - the TrainOptions fields of those settings (TrainSettings, extended by ./trainer.ts);
// - the settings every checkpoint stores (storedSettings) and the --resume check (checkResumeSettings);
// - the name every message of the model uses for a setting (flagOf): the model never spells a flag itself.
// Adding a training flag is one entry here plus the line of trainer.ts that uses its value.
//
// `model` entries are FusionConfig fields, given as TrainOptions.model; their defaults are the model's own
// (DEFAULT_FUSION). `train` entries are TrainOptions fields.

import { DataError, SettingError } from '../errors.ts';
import { DEFAULT_FUSION, FUSION_VARIANTS, type FusionConfig } from '../fusion/model.ts';
import { parseFusionVariant } from '../fusion/parse-variant.ts';

/** A setting's value as a checkpoint stores it (JSON). */
export type StoredSetting = string | number | boolean | null;

export interface Setting<V> {
  /** Where the value goes: a FusionConfig field (TrainOptions.model) or a TrainOptions field. */
  in: 'model' | 'train';
  /** How a user spells it: '--batch-size', or '--no-standardize' for a switch that turns a default-on setting off. */
  flag: string;
  /** The value's name in --help ('<B>'); absent for a switch. */
  arg?: string;
  help: string;
  /** The value of a setting left out (undefined: the trainer derives one, e.g. the warm-up from the step count). */
  default: V | undefined;
  /** The typed text as a value; throws a SettingError naming `flag`. Absent for a switch (its value is a boolean). */
  parse?(text: string, flag: string): V;
  /**
   * What --resume may do with it: 'same' (another value would change the run: refused), 'free' (it changes no step
   * already taken), 'grow' (it may grow, not below the epochs the run has done: --epochs).
   */
  resume: 'same' | 'free' | 'grow';
  /**
   * A setting of one run, not of a budget that several runs share: `ablate` sets it per run (fusion) or has no use for
   * it, so it is no flag of ablate.
   */
  perRun?: true;
  /** The value as a checkpoint stores it (default: as it is). */
  store?(v: V): StoredSetting;
  /** A stored value as --help and --resume's messages show it (default: String). */
  show?(v: StoredSetting): string;
}

// ------------------------------------------------------------------------------------------ value parsers

// One spelling of numbers for every flag: decimal, as typed in a shell. Number() alone also takes '0x2', ' 3', ''
// (0) and 'Infinity', and '1e400' overflows to Infinity (reported as null once printed as JSON).
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^-?\d+$/;

/** `text` as a finite decimal number, or a SettingError naming `flag` and saying what is wrong with it. */
function finite(text: string, flag: string, want: string): number {
  if (!DECIMAL.test(text)) throw new SettingError(`${flag} must be ${want}, got '${text}' (not a decimal number)`);
  const n = Number(text);
  if (!Number.isFinite(n)) throw new SettingError(`${flag} must be ${want}, got '${text}' (not a finite number)`);
  return n;
}

/** `text` as an integer in [min, max], written as one: digits and an optional minus sign (not 2.0, 1e3, +4 or 0x2). */
export function parseInteger(text: string, flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const want = `an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`}`;
  if (!INTEGER.test(text)) {
    const n = finite(text, flag, want); // not a number at all, or not a finite one, says so
    throw new SettingError(`${flag} must be ${want}, got '${text}' (write ${Number.isInteger(n) ? n : 'an integer'} as digits only)`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new SettingError(`${flag} must be ${want}, got '${text}'`);
  return n;
}

/** `text` as a finite number >= min. */
export function parseNumber(text: string, flag: string, min = 0): number {
  const n = finite(text, flag, `a number >= ${min}`);
  if (n < min) throw new SettingError(`${flag} must be a number >= ${min}, got '${text}'`);
  return n;
}

/** `text` as a number > 0 (learning rates). */
export function parsePositive(text: string, flag: string): number {
  const n = finite(text, flag, 'a number > 0');
  if (n <= 0) throw new SettingError(`${flag} must be a number > 0, got '${text}'`);
  return n;
}

const integer =
  (min = 1, max?: number) =>
  (text: string, flag: string) =>
    parseInteger(text, flag, min, max);
const number = (text: string, flag: string) => parseNumber(text, flag);
const name = (text: string) => text;

/** A drop probability: a number in [0, 1). */
function probability(text: string, flag: string): number {
  const p = parseNumber(text, flag);
  if (p >= 1) throw new SettingError(`${flag} must be below 1, got ${p}`);
  return p;
}

function oneOf<C extends string>(...choices: C[]): (text: string, flag: string) => C {
  return (text, flag) => {
    if (!(choices as string[]).includes(text))
      throw new SettingError(`${flag} must be ${choices.map((c) => `'${c}'`).join(' or ')}, got '${text}'`);
    return text as C;
  };
}

const onOff = (v: StoredSetting) => (v ? 'on' : 'off');

function parseClassWeights(text: string, flag: string): 'inverse' | 'none' | number[] {
  if (text === 'inverse' || text === 'none') return text;
  const weights = text.split(',').map((w) => parseNumber(w.trim(), flag));
  if (!weights.some((w) => w > 0))
    throw new SettingError(`${flag}: at least one weight must be above 0 (all zero trains nothing), got '${text}'`);
  return weights;
}

// ------------------------------------------------------------------------------------------ the schema

/** The largest model width and layer count the settings accept (wider runs out of memory long before). */
export const MAX_WIDTH = 4096;
export const MAX_LAYERS = 64;
/** Linear warm-up over this fraction of all steps (at least 1 step) when `warmup` is not given. */
export const WARMUP_FRACTION = 0.05;

const M = DEFAULT_FUSION;

/** Every training setting, in the order --help lists them. */
// biome-ignore format: one table, a row or two per setting
export const TRAIN_SETTINGS = {
  fusion: {
    in: 'model', flag: '--fusion', arg: '<variant>', help: `fusion variant: ${FUSION_VARIANTS.join(', ')}`, default: M.fusion,
    parse: parseFusionVariant, resume: 'same',
    perRun: true,
  },
  width: {
    in: 'model', flag: '--width', arg: '<C>', help: 'model width C', default: M.width, parse: integer(1, MAX_WIDTH), resume: 'same',
  },
  heads: {
    in: 'model', flag: '--heads', arg: '<H>', help: 'attention heads (C/H must be a multiple of 4, at most 128)', default: M.heads,
    parse: integer(1, MAX_WIDTH), resume: 'same',
  },
  layers: {
    in: 'model', flag: '--layers', arg: '<L>', help: 'self-attention blocks after the cross-attention', default: M.layers,
    parse: integer(0, MAX_LAYERS), resume: 'same',
  },
  ffnMult: {
    in: 'model', flag: '--ffn-mult', arg: '<m>', help: 'feed-forward width = m * C', default: M.ffnMult, parse: integer(1, 64),
    resume: 'same',
  },
  dropout: {
    in: 'model', flag: '--dropout', arg: '<p>', help: 'dropout before the classifier', default: M.dropout, parse: probability,
    resume: 'same',
  },
  blockDropout: {
    in: 'model', flag: '--block-dropout', arg: '<p>', help: 'dropout of the attention and feed-forward outputs inside every block',
    default: M.blockDropout, parse: probability,
    resume: 'same',
  },
  linearSkip: {
    in: 'model', flag: '--linear-skip', arg: '<on|off>',
    help: "'on': the classifier also reads the linear variant's features (mean + std of each input), so the model contains the " +
      "linear probe",
    default: M.linearSkip, parse: (text: string, flag: string) => oneOf('on', 'off')(text, flag) === 'on', resume: 'same', show: onOff,
  },
  /** Standardize every input dimension with train-split statistics (kept in the checkpoint, applied by eval and predict). */
  standardize: {
    in: 'train', flag: '--no-standardize',
    help: 'feed the features as they are (default: standardize each input dimension with train-split statistics)', default: true,
    resume: 'same', show: onOff,
  },
  seed: {
    in: 'model', flag: '--seed', arg: '<n>', help: 'seeds initialisation, shuffling and dropout', default: M.seed, parse: integer(0),
    resume: 'same',
  },
  epochs: {
    in: 'train', flag: '--epochs', arg: '<n>', help: 'passes over the train split', default: 20, parse: integer(1), resume: 'grow',
  },
  /** Utterances per step (and per forward pass in evaluation). */
  batchSize: { in: 'train', flag: '--batch-size', arg: '<B>', help: 'utterances per step', default: 32, parse: integer(1), resume: 'same' },
  /** Peak learning rate of AdamW. */
  lr: { in: 'train', flag: '--lr', arg: '<lr>', help: 'peak learning rate (AdamW)', default: 5e-4, parse: parsePositive, resume: 'same' },
  /** Learning rate at the last step. */
  minLr: { in: 'train', flag: '--min-lr', arg: '<lr>', help: 'learning rate at the last step', default: 0, parse: number, resume: 'same' },
  /** Warm-up steps (default WARMUP_FRACTION of all steps, at least 1). */
  warmup: {
    in: 'train', flag: '--warmup', arg: '<steps>', help: `linear warm-up steps (default: ${100 * WARMUP_FRACTION}% of all steps)`,
    default: undefined, parse: integer(1),
    resume: 'same',
  },
  decay: {
    in: 'train', flag: '--decay', arg: '<kind>', help: "'cosine' or 'linear' decay after the warm-up", default: 'cosine',
    parse: oneOf('cosine', 'linear'), resume: 'same',
  },
  /** AdamW decoupled weight decay (matrices only). */
  weightDecay: {
    in: 'train', flag: '--weight-decay', arg: '<wd>', help: 'AdamW decoupled weight decay (matrices only)', default: 0.01, parse: number,
    resume: 'same',
  },
  /** Label smoothing eps of the training loss (0: plain cross-entropy). */
  labelSmoothing: {
    in: 'train', flag: '--label-smoothing', arg: '<eps>',
    help: 'train towards (1 - eps) on the label and eps spread over all classes (0: plain cross-entropy)', default: 0,
    parse: (text: string, flag: string) => {
      const eps = parseNumber(text, flag);
      if (!(eps >= 0 && eps < 1)) throw new SettingError(`${flag} must lie in [0, 1), got ${eps}`);
      return eps;
    },
    resume: 'same',
  },
  /** Clip the global gradient norm to this (0: off). */
  maxGradNorm: {
    in: 'train', flag: '--max-grad-norm', arg: '<n>', help: 'clip the global gradient norm (0: off)', default: 1, parse: number,
    resume: 'same',
  },
  /**
   * Epochs without a better dev weighted F1 before stopping: the CLI's default is 5; a library call to `train()` that
   * leaves `patience` out never stops early (0).
   */
  patience: {
    in: 'train', flag: '--patience', arg: '<epochs>', help: 'stop after this many epochs without a better dev weighted F1 (0: never)',
    default: 5, parse: integer(0), resume: 'free',
  },
  /**
   * 'inverse' (inverse class frequency on the train split), 'none' (all 1), or one weight per class. Default 'none':
   * the paper's metric is weighted F1, and inverse-frequency weights cost it on MELD dev (text variant, width 64:
   * 51.6 -> 48.2 on hash, 55.5 -> 53.2 on all-MiniLM-L6-v2 features).
   */
  classWeights: {
    in: 'train', flag: '--class-weights', arg: '<w>', help: "'inverse' (inverse class frequency), 'none', or comma-separated weights",
    default: 'none', parse: parseClassWeights,
    resume: 'same', store: (w: 'inverse' | 'none' | number[]) => (Array.isArray(w) ? w.join(',') : w),
  },
  /** Cap on text tokens per utterance (longer ones are truncated); default the longest in the data. */
  maxTextLen: {
    in: 'train', flag: '--max-text-len', arg: '<n>', help: 'truncate text to n tokens (default: the longest in the data)',
    default: undefined, parse: integer(1), resume: 'same',
  },
  /** Cap on audio tokens per utterance (longer ones are truncated); default the longest in the data. */
  maxAudioLen: {
    in: 'train', flag: '--max-audio-len', arg: '<n>', help: 'truncate audio to n tokens (default: the longest in the data)',
    default: undefined, parse: integer(1), resume: 'same',
  },
  /** Read the labels through a label map (datasets/label-map.ts); its report is printed and saved in the checkpoint. */
  labelMap: {
    in: 'train', flag: '--label-map', arg: '<map|file>',
    help: "read the labels through a label map: 'meld7' (e.g. meld7:calm=drop,boredom=neutral) or a JSON / CSV from,to file",
    default: undefined, parse: name,
    resume: 'same',
  },
  /** Each training utterance with both modalities drops one of them (50/50) with this probability, seeded by (seed, step, row). */
  modalityDropout: {
    in: 'train', flag: '--modality-dropout', arg: '<p>',
    help: 'drop the text or the audio (50/50) of a training utterance that has both, with probability p',
    default: 0, parse: probability, resume: 'same',
  },
  /**
   * Standardize each speaker's tokens with that speaker's own statistics (speakers from the cache: RAVDESS, EmoDB,
   * CREMA-D ids), before the train statistics; utterances without a speaker get the pooled raw train statistics
   * (fusion/input-norm.ts SpeakerFallback, kept in the checkpoint) instead.
   */
  selectBy: {
    in: 'train', flag: '--select-by', arg: '<pooled|corpus-mean>',
    help: "the dev score that picks the best epoch and stops early: 'pooled' weighted F1 over every dev utterance, or " +
      "'corpus-mean' (the mean of each corpus's weighted F1, so a large corpus does not decide for the others)",
    default: 'pooled', parse: oneOf('pooled', 'corpus-mean'), resume: 'same',
  },
  /** How a joined train split's corpora share an epoch (train/data.ts balancedOrder); a single cache: no effect. */
  balance: {
    in: 'train', flag: '--balance', arg: '<none|corpus|sqrt>',
    help: "how joined caches share an epoch: 'none' every utterance once, 'corpus' each corpus equally often (small ones " +
      "repeat, large ones are cut), 'sqrt' in proportion to the square root of each corpus's size",
    default: 'none', parse: oneOf('none', 'corpus', 'sqrt'), resume: 'same',
  },
  speakerNorm: {
    in: 'train', flag: '--speaker-norm', arg: '<on|off>',
    help: "'on': standardize each speaker's inputs with the speaker's own mean / std first (utterances without a speaker, a " +
      "lone clip: the pooled train statistics)",
    default: false, parse: (text: string, flag: string) => oneOf('on', 'off')(text, flag) === 'on', resume: 'same', show: onOff,
  },
  /**
   * With --speaker-norm: each epoch, each train utterance is standardized with the run's pooled raw train statistics
   * (what a lone clip gets: fusion/input-norm.ts SpeakerFallback) instead of its speaker's, with probability p, seeded by
   * (seed, epoch, utterance), so the model learns both.
   */
  speakerNormMix: {
    in: 'train', flag: '--speaker-norm-mix', arg: '<p>',
    help: "with --speaker-norm on: standardize a train utterance with the pooled train statistics (as a lone clip is) instead " +
      "of its speaker's, with probability p each epoch",
    default: 0, parse: probability, resume: 'same',
  },
  trainSplit: {
    in: 'train', flag: '--train-split', arg: '<name>', help: "split to train on; 'a+b' joins splits into one (e.g. train+dev)",
    default: 'train', parse: name, resume: 'same',
  },
  devSplit: {
    in: 'train', flag: '--dev-split', arg: '<name>', help: 'split for early stopping', default: 'dev', parse: name, resume: 'same',
  },
  /**
   * Fine-tune the text encoder end to end (train/finetune-text.ts): the top k of its blocks ('all': every block and the
   * embeddings) train under the text-only head; needs --fusion text and a cache extracted with a bert: text encoder.
   */
  finetuneText: {
    in: 'train', flag: '--finetune-text', arg: '<k|all>',
    help: "fine-tune the text encoder's top k blocks ('all': every block and the embeddings) under the text-only head " +
      '(needs --fusion text and a feature cache extracted with a bert: text encoder)',
    default: undefined,
    parse: (text: string, flag: string): number | 'all' => (text === 'all' ? 'all' : parseInteger(text, flag, 0, MAX_LAYERS)),
    resume: 'same', perRun: true,
  },
  textLr: {
    in: 'train', flag: '--text-lr', arg: '<lr>', help: "peak learning rate of the fine-tuned text encoder's top block (--finetune-text)",
    default: 1e-4, parse: parsePositive, resume: 'same', perRun: true,
  },
  layerDecay: {
    in: 'train', flag: '--layer-decay', arg: '<d>',
    help: 'the text encoder\'s learning rate shrinks by d per block below the top (--finetune-text; 1: the same rate for all)',
    default: 1, parse: (text: string, flag: string) => {
      const d = parsePositive(text, flag);
      if (d > 1) throw new SettingError(`${flag} must lie in (0, 1], got ${d}`);
      return d;
    },
    resume: 'same', perRun: true,
  },
  /** Also save last.safetensors every this many steps (0: only at epoch ends). */
  saveEvery: {
    in: 'train', flag: '--save-every', arg: '<steps>', help: 'also checkpoint every n steps (0: at epoch ends only)', default: 0,
    parse: integer(0), resume: 'free',
  },
  /** Stop (saving last.safetensors) after this many steps in total; a later --resume continues bit-for-bit. */
  stopAfterSteps: {
    in: 'train', flag: '--stop-after-steps', arg: '<n>',
    help: 'stop after n steps in total, saving last.safetensors (train --resume continues the run)', default: undefined,
    parse: integer(1), resume: 'free', perRun: true,
  },
} satisfies Record<string, Setting<unknown>>;

type Entries = typeof TRAIN_SETTINGS;
export type TrainSettingName = keyof Entries;
/** The value type of a setting: what its parser returns (a switch: boolean). */
export type SettingValue<K extends TrainSettingName> = Entries[K] extends { parse: (text: string, flag: string) => infer V } ? V : boolean;
export type ModelSettingName = { [K in TrainSettingName]: Entries[K]['in'] extends 'model' ? K : never }[TrainSettingName];

/** The settings as TrainOptions holds them: `model` ones in `model`, the rest at the top; each optional (left out: its default). */
export type TrainSettings = { [K in keyof Entries as Entries[K]['in'] extends 'train' ? K : never]?: SettingValue<K> } & {
  /** Model settings (width, heads, layers, ...); data-dependent ones come from the features. */
  model?: Partial<Pick<FusionConfig, ModelSettingName>>;
};

/** The `train` settings that have a default, with it (what `TRAIN_DEFAULTS` holds besides `warmupFraction`). */
export type TrainSettingDefaults = {
  readonly [K in keyof Entries as Entries[K]['in'] extends 'train'
    ? Entries[K]['default'] extends undefined
      ? never
      : K
    : never]: SettingValue<K>;
};

const ENTRIES = Object.entries(TRAIN_SETTINGS) as [TrainSettingName, Setting<unknown>][];

/** The settings in schema order, each with its name. */
export function trainSettings(): readonly [TrainSettingName, Setting<unknown>][] {
  return ENTRIES;
}

export function settingDefaults(): TrainSettingDefaults {
  return Object.fromEntries(
    ENTRIES.filter(([, s]) => s.in === 'train' && s.default !== undefined).map(([k, s]) => [k, s.default]),
  ) as TrainSettingDefaults;
}

// ------------------------------------------------------------------------------------------ flags

/**
 * The options the commands declare themselves (their help and defaults differ per command: train's --out is
 * runs/train, ablate's runs/ablate) that the model's messages name.
 */
export const COMMAND_FLAGS = {
  outDir: '--out',
  resume: '--resume',
  force: '--force',
  split: '--split',
  testSplit: '--test-split',
  folds: '--folds',
  speakerOf: '--speaker-pattern',
} as const;

export type FlagName = TrainSettingName | keyof typeof COMMAND_FLAGS;

/** How a user spells a setting: every message of the model that names one builds the name with this. */
export function flagOf(name: FlagName): string {
  return name in COMMAND_FLAGS ? COMMAND_FLAGS[name as keyof typeof COMMAND_FLAGS] : TRAIN_SETTINGS[name as TrainSettingName].flag;
}

/**
 * Settings typed as text (the CLI's flag values; a switch as a boolean) as TrainSettings: each given one parsed and
 * checked (a SettingError naming its flag), each left out (undefined) left out. `names` picks the settings (default all).
 */
export function parseSettings(
  texts: Partial<Record<TrainSettingName, string | boolean>>,
  names: readonly TrainSettingName[] = ENTRIES.map(([k]) => k),
): TrainSettings {
  const top: Record<string, unknown> = {};
  const model: Record<string, unknown> = {};
  for (const k of names) {
    const s = TRAIN_SETTINGS[k] as Setting<unknown>;
    const text = texts[k];
    let value: unknown;
    if (text === undefined) value = undefined;
    else if (!s.parse) {
      if (typeof text !== 'boolean') throw new SettingError(`${s.flag} is a switch: it takes no value, got '${text}'`);
      value = text;
    } else {
      if (typeof text !== 'string') throw new SettingError(`${s.flag} needs a value ${s.arg ?? ''}`.trimEnd());
      value = s.parse(text, s.flag);
    }
    if (s.in === 'model') {
      if (value !== undefined) model[k] = value;
    } else top[k] = value;
  }
  // settings checked against each other: a learning rate that would rise while it decays
  const [lr, minLr] = [top.lr ?? TRAIN_SETTINGS.lr.default, top.minLr ?? TRAIN_SETTINGS.minLr.default] as [number, number];
  if (minLr > lr) {
    throw new SettingError(
      `${TRAIN_SETTINGS.minLr.flag} ${minLr} is above ${TRAIN_SETTINGS.lr.flag} ${lr}: the rate would rise during the decay; ` +
        `give ${TRAIN_SETTINGS.minLr.flag} at most ${lr}`,
    );
  }
  return { ...top, model } as TrainSettings;
}

// ------------------------------------------------------------------------------------------ --resume

/** Every setting of a run as its checkpoints store it (meta.train.flags), each left out as its default (or null). */
export type StoredSettings = Record<string, StoredSetting>;

export function storedSettings(o: TrainSettings): StoredSettings {
  const stored: StoredSettings = {};
  for (const [k, s] of ENTRIES) {
    const given = s.in === 'model' ? o.model?.[k as ModelSettingName] : (o as Record<string, unknown>)[k];
    const v = given ?? s.default;
    stored[k] = v === undefined ? null : s.store ? s.store(v) : (v as StoredSetting);
  }
  return stored;
}

/** 'a', 'a and b', 'a, b and c'. */
const and = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/**
 * Refuses a --resume whose settings would change the run: names each setting, the stored value and the given one.
 * A 'grow' setting (--epochs) may grow, not below the epochs already done; 'free' ones may change. A checkpoint from
 * before settings were stored is not checked.
 */
export function checkResumeSettings(
  stored: StoredSettings | undefined,
  given: StoredSettings,
  from: string,
  step: number,
  trainSize: number,
): void {
  if (!stored) return;
  const show = (s: Setting<unknown>, v: StoredSetting | undefined) => (v === null || v === undefined ? '(default)' : (s.show ?? String)(v));
  const epochsDone = Math.floor(step / Math.ceil(trainSize / Number(stored.batchSize)));
  const diffs: string[] = [];
  for (const [k, s] of ENTRIES) {
    if (s.resume === 'free' || !(k in stored)) continue;
    const a = stored[k];
    const b = given[k] ?? null;
    if (s.resume === 'grow') {
      if (Number(b) < epochsDone) diffs.push(`${s.flag} ${b} is below the ${epochsDone} epoch(s) already trained`);
    } else if (a !== b) diffs.push(`${s.flag}: the run has ${show(s, a)}, given ${show(s, b)}`);
  }
  if (diffs.length) {
    const flags = (r: Setting<unknown>['resume']) => ENTRIES.filter(([, s]) => s.resume === r).map(([, s]) => s.flag);
    throw new DataError(
      `${flagOf('resume')}: these flags differ from the run in ${from}, and changing them would change the run:\n  ` +
        `${diffs.join('\n  ')}\n` +
        `give the run's values (only ${and(flags('grow'))} may grow, and ${and(flags('free'))} may change), ` +
        `or start a new run with ${flagOf('force')} or another ${flagOf('outDir')}`,
    );
  }
}
