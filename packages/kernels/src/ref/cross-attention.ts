// CPU reference for fused multi-head cross-attention, float64. Plain per-(b, h) softmax attention:
//   s_ij = scale * q_i.k_j (keys with mask 0 dropped), P = softmax_j(s), out_i = sum_j P_ij v_j,
//   lse_i = log sum_j exp(s_ij).
// Layouts as in shaders/cross-attention.fwd.wgsl: q, out [B, Tq, C]; k, v [B, Tk, C]; mask [B, Tk];
// lse [B, H, Tq]; C = H*D and head h owns channels h*D .. h*D+D-1.
// A fully masked row (no key kept) has out = 0 and lse = CROSS_ATTENTION_MASKED_LSE, and no gradient.

/** lse of a fully masked row: -1e30 as f32 (what the GPU writes), so GPU and reference compare exactly. */
export const CROSS_ATTENTION_MASKED_LSE = Math.fround(-1e30);

export interface CrossAttentionDims {
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  D: number;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
}

function isMaskedLse(l: number): boolean {
  return l < -1e29;
}

/** Returns out [B, Tq, C] and lse [B, H, Tq]. */
export function crossAttentionForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  dims: CrossAttentionDims,
): { out: Float64Array; lse: Float64Array } {
  const { B, Tq, Tk, H, D } = dims;
  const scale = dims.scale ?? 1 / Math.sqrt(D);
  const C = H * D;
  const out = new Float64Array(B * Tq * C);
  const lse = new Float64Array(B * H * Tq);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Tq; i++) {
        const qo = (b * Tq + i) * C + h * D;
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          if (mask && mask[b * Tk + j] === 0) {
            s[j] = -Infinity;
            continue;
          }
          const ko = (b * Tk + j) * C + h * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
          s[j] = scale * dot;
          if (s[j]! > m) m = s[j]!;
        }
        const row = (b * H + h) * Tq + i;
        if (m === -Infinity) {
          lse[row] = CROSS_ATTENTION_MASKED_LSE; // out stays 0
          continue;
        }
        let l = 0;
        for (let j = 0; j < Tk; j++) l += Math.exp(s[j]! - m);
        for (let j = 0; j < Tk; j++) {
          const p = Math.exp(s[j]! - m) / l;
          if (p === 0) continue;
          const vo = (b * Tk + j) * C + h * D;
          for (let d = 0; d < D; d++) out[qo + d] += p * v[vo + d]!;
        }
        lse[row] = m + Math.log(l);
      }
    }
  }
  return { out, lse };
}

/**
 * Analytic backward from the forward's out and lse: P_ij = exp(s_ij - lse_i), Drow_i = dout_i.out_i,
 * dS_ij = P_ij (dout_i.v_j - Drow_i); dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i,
 * dv_j = sum_i P_ij dout_i. Padded keys and fully masked rows contribute nothing.
 */
export function crossAttentionBackward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  out: ArrayLike<number>,
  lse: ArrayLike<number>,
  dout: ArrayLike<number>,
  dims: CrossAttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, Tq, Tk, H, D } = dims;
  const scale = dims.scale ?? 1 / Math.sqrt(D);
  const C = H * D;
  const dq = new Float64Array(B * Tq * C);
  const dk = new Float64Array(B * Tk * C);
  const dv = new Float64Array(B * Tk * C);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Tq; i++) {
        const l = lse[(b * H + h) * Tq + i]!;
        if (isMaskedLse(l)) continue;
        const qo = (b * Tq + i) * C + h * D;
        let drow = 0;
        for (let d = 0; d < D; d++) drow += dout[qo + d]! * out[qo + d]!;
        for (let j = 0; j < Tk; j++) {
          if (mask && mask[b * Tk + j] === 0) continue;
          const ko = (b * Tk + j) * C + h * D;
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qo + d]! * k[ko + d]!;
            dp += dout[qo + d]! * v[ko + d]!;
          }
          const p = Math.exp(scale * dot - l);
          const ds = p * (dp - drow);
          for (let d = 0; d < D; d++) {
            dq[qo + d] += scale * ds * k[ko + d]!;
            dk[ko + d] += scale * ds * q[qo + d]!;
            dv[ko + d] += p * dout[qo + d]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
