// Classification metrics: accuracy, weighted F1 (the paper's metric: per-class F1 averaged with weights = support),
// macro F1, per-class precision / recall / F1 / support, and the confusion matrix (rows = true, columns = predicted).
// Conventions as scikit-learn's with zero_division=0: a class never predicted has precision 0; a class with no
// support has recall 0 and does not count in the weighted average (weight 0) but does count in the macro average.

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Metrics {
  n: number;
  accuracy: number;
  weightedF1: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** [K_cls][K_cls] counts: confusion[true][predicted]. */
  confusion: number[][];
  classNames: string[];
}

export function argmax(row: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let k = 1; k < n; k++) if (row[offset + k]! > row[offset + best]!) best = k;
  return best;
}

/** Class probabilities of one row of logits: softmax(row[offset .. offset + n)), shifted by the row's max. */
export function softmax(row: ArrayLike<number>, offset: number, n: number): number[] {
  const x = Array.from({ length: n }, (_, k) => row[offset + k]!);
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function computeMetrics(labels: ArrayLike<number>, predictions: ArrayLike<number>, classNames: readonly string[]): Metrics {
  const K = classNames.length;
  if (labels.length !== predictions.length) throw new Error(`metrics: ${labels.length} labels but ${predictions.length} predictions`);
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    const p = predictions[i]!;
    confusion[y]![p]! += 1;
    if (y === p) correct++;
  }
  const n = labels.length;
  const perClass: ClassMetrics[] = classNames.map((name, k) => {
    const tp = confusion[k]![k]!;
    const support = confusion[k]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[k]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
  const weightedF1 = n ? perClass.reduce((a, c) => a + c.f1 * c.support, 0) / n : 0;
  const macroF1 = K ? perClass.reduce((a, c) => a + c.f1, 0) / K : 0;
  return { n, accuracy: n ? correct / n : 0, weightedF1, macroF1, perClass, confusion, classNames: [...classNames] };
}
