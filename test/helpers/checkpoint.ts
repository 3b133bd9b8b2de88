// Checkpoints edited on purpose by tests (a NaN weight as a diverged run writes one, metadata of another cache): the
// edit then gets a checksum that holds, as a checkpoint that really was written so would have, so the test reaches
// the check it is about instead of the checksum's "damaged" (packages/model/src/train/checkpoint-bytes.ts).

import { checkpointChecksum, decodeSafetensors, nodeSha256 } from '@emofuse/model';

/** Safetensors bytes with their `emofuse` metadata's sha256 set to the checksum of what they hold now. */
export function resign(bytes: Uint8Array): Buffer {
  const d = decodeSafetensors(bytes);
  const { sha256: _, ...meta } = JSON.parse(d.metadata.emofuse!) as Record<string, unknown>;
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  header.__metadata__.emofuse = JSON.stringify({ ...meta, sha256: checkpointChecksum(d, meta, nodeSha256) });
  let h = Buffer.from(JSON.stringify(header), 'utf8');
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, d.dataSection]);
}
