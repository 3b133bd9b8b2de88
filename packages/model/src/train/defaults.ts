// The training defaults: `train()` uses them for an option left out, and the CLI's flags (`emofuse train`, `eval`,
// `ablate`) show and use the same values. Each is stated once, in its setting's entry of TRAIN_SETTINGS
// (./settings.ts); the model's own defaults (width, heads, ...) are DEFAULT_FUSION in fusion/model.ts.

import { WARMUP_FRACTION, settingDefaults, type TrainSettingDefaults } from './settings.ts';

export const TRAIN_DEFAULTS: TrainSettingDefaults & {
  /** Linear warm-up over this fraction of all steps (at least 1 step) when `warmup` is not given. */
  readonly warmupFraction: number;
} = { ...settingDefaults(), warmupFraction: WARMUP_FRACTION };

/** AdamW's moment decay rates and epsilon (not exposed as flags). */
export const ADAMW_BETAS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Warm-up steps when none are given: `warmupFraction` of all steps, at least 1. */
export function defaultWarmup(totalSteps: number): number {
  return Math.max(1, Math.round(TRAIN_DEFAULTS.warmupFraction * totalSteps));
}
