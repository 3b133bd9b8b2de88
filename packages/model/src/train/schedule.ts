// Learning rate at each step: linear warm-up from lr/warmup to lr over `warmup` steps, then cosine (or linear)
// decay to minLr at the last step.

export interface ScheduleOptions {
  lr: number;
  minLr: number;
  warmup: number;
  total: number;
  decay: 'cosine' | 'linear';
}

/** lr for step s (0-based). */
export function learningRate(s: number, o: ScheduleOptions): number {
  if (s < o.warmup) return (o.lr * (s + 1)) / o.warmup;
  const span = Math.max(1, o.total - o.warmup - 1);
  const frac = Math.min(1, (s - o.warmup) / span);
  const k = o.decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * frac)) : 1 - frac;
  return o.minLr + (o.lr - o.minLr) * k;
}
