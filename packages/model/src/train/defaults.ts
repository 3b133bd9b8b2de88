// The training defaults, stated once: `train()` uses them for an option left out, and the CLI's flags
// (`emofuse train`, `eval`, `ablate`) show and use the same values. The model's own defaults (width, heads, ...)
// are DEFAULT_FUSION in fusion/model.ts.

export const TRAIN_DEFAULTS = {
  epochs: 20,
  /** Utterances per step (and per forward pass in evaluation). */
  batchSize: 32,
  /** Peak learning rate of AdamW. */
  lr: 5e-4,
  /** Learning rate at the last step. */
  minLr: 0,
  /** Linear warm-up over this fraction of all steps (at least 1 step) when `warmup` is not given. */
  warmupFraction: 0.05,
  decay: 'cosine' as 'cosine' | 'linear',
  /** AdamW decoupled weight decay (matrices only). */
  weightDecay: 0.01,
  /** Label smoothing eps of the training loss (0: plain cross-entropy). */
  labelSmoothing: 0,
  /** Clip the global gradient norm to this (0: off). */
  maxGradNorm: 1,
  /**
   * Epochs without a better dev weighted F1 before stopping: the CLI's default. A library call to `train()`
   * that leaves `patience` out never stops early (0).
   */
  patience: 5,
  /**
   * 'none' (every class weighs 1): the paper's metric is weighted F1, and inverse-frequency weights cost it on MELD
   * dev (text variant, width 64: 51.6 -> 48.2 on hash, 55.5 -> 53.2 on all-MiniLM-L6-v2 features).
   */
  classWeights: 'none' as 'inverse' | 'none',
  /** Standardize every input dimension with train-split statistics (kept in the checkpoint, applied by eval and predict). */
  standardize: true,
  trainSplit: 'train',
  devSplit: 'dev',
  /** Also checkpoint every n steps (0: at epoch ends only). */
  saveEvery: 0,
} as const;

/** AdamW's moment decay rates and epsilon (not exposed as flags). */
export const ADAMW_BETAS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Warm-up steps when none are given: `warmupFraction` of all steps, at least 1. */
export function defaultWarmup(totalSteps: number): number {
  return Math.max(1, Math.round(TRAIN_DEFAULTS.warmupFraction * totalSteps));
}
