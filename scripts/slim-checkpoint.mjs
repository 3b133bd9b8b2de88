// Writes an inference-only copy of a checkpoint: the parameters and the input standardization, without the AdamW
// moments (two thirds of a training checkpoint); the metadata without the run's id and time. The shipped default model is made this
// way (scripts/train-default.sh); `predict`, `eval` and `export` load it like any checkpoint (it cannot --resume).
//   node scripts/slim-checkpoint.mjs <in.safetensors> <out.safetensors>
// The source's checksum is verified on reading (a damaged checkpoint is refused), and writeSafetensors gives the copy
// its own (meta.sha256, over what the copy holds); the kept tensors' bytes are copied as they are.
// Needs the built model package (npm run build).
import { readSafetensors, writeSafetensors } from '../packages/model/dist/index.js';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error('usage: node scripts/slim-checkpoint.mjs <in.safetensors> <out.safetensors>');
  process.exit(2);
}
const { tensors, metadata } = readSafetensors(src);
const kept = new Map([...tensors].filter(([name]) => !name.startsWith('adam.')));
// What only the run that made it knew (its id, its wall time) goes too, so the same recipe gives the same file.
const meta = JSON.parse(metadata.emofuse ?? '{}');
if (meta.train) {
  delete meta.train.runId;
  delete meta.train.seconds;
}
writeSafetensors(dst, kept, { ...metadata, ...(metadata.emofuse ? { emofuse: JSON.stringify(meta) } : {}) });
console.log(`${dst}: ${kept.size} of ${tensors.size} tensors (AdamW moments dropped)`);
