# PyTorch peer of `emofuse bench train --finetune` (packages/bench/src/finetune.ts): the text encoder's fine-tuning
# step as finetuneText runs it (packages/model/src/train/finetune-text.ts), in plain torch: the BERT of the model
# folder's config.json (word + position + token-type embeddings, LayerNorm, L post-LN blocks with erf GELU; random
# weights: a step's time does not depend on them), the top K blocks trained and the rest run under no_grad, then the
# head of the same size as ours (Linear Ct->C, `layers` post-LN self-attention blocks of width C, H heads, FFN
# ffn_mult*C with tanh GELU, masked mean pool, Linear C->classes), cross-entropy, backward, each group's grad-norm
# clip to 1, AdamW on both (head lr, text lr), loss.item().
#
# Serves steps: prints `ready {"torch": ..., "threads": ...}`, then for each stdin line `run B T` runs one step on a
# batch of B rows of T tokens (random ids of the vocabulary's middle third; row b has T - b % 4 real tokens, the rest masked: the bench writes the same) and
# prints `done <loss>`. Usage: finetune_twin.py <job.json> --serve
import json
import math
import sys

import torch
import torch.nn.functional as F

job = json.load(open(sys.argv[1]))
torch.set_num_threads(job["threads"])
torch.manual_seed(0)
cfg = json.load(open(job["config"]))
Ct, L, Hb = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
Fb, eps, V, P = cfg["intermediate_size"], cfg.get("layer_norm_eps", 1e-12), cfg["vocab_size"], cfg["max_position_embeddings"]
K = min(job["train_top"], L + 1)
C, H, layers, ffn, classes = job["width"], job["heads"], job["layers"], job["ffn_mult"] * job["width"], job["classes"]


def lin(i, o):
    return torch.nn.Linear(i, o)


class Block(torch.nn.Module):
    """BERT's block (post-LN): h = LN(x + Wo attn(x)), y = LN(h + W2 gelu(W1 h))."""

    def __init__(self, c, h, f, eps, approximate):
        super().__init__()
        self.h, self.eps, self.approximate = h, eps, approximate
        self.qkv, self.o, self.f1, self.f2 = lin(c, 3 * c), lin(c, c), lin(c, f), lin(f, c)
        self.ln1, self.ln2 = torch.nn.LayerNorm(c, eps=eps), torch.nn.LayerNorm(c, eps=eps)

    def forward(self, x, bias):
        B, T, c = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.h) + bias, dim=-1) @ v
        h = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, c)))
        return self.ln2(h + self.f2(F.gelu(self.f1(h), approximate=self.approximate)))


emb = torch.nn.ModuleDict({"word": torch.nn.Embedding(V, Ct), "pos": torch.nn.Embedding(P, Ct), "tok_type": torch.nn.Embedding(2, Ct)})
emb_ln = torch.nn.LayerNorm(Ct, eps=eps)
blocks = torch.nn.ModuleList([Block(Ct, Hb, Fb, eps, "none") for _ in range(L)])
trained = list(blocks[L - min(K, L):].parameters()) + (list(emb.parameters()) + list(emb_ln.parameters()) if K > L else [])
for p in list(emb.parameters()) + list(emb_ln.parameters()) + list(blocks.parameters()):
    p.requires_grad_(False)
for p in trained:
    p.requires_grad_(True)
proj, head_blocks, cls = lin(Ct, C), torch.nn.ModuleList([Block(C, H, ffn, 1e-5, "tanh") for _ in range(layers)]), lin(C, classes)
head = list(proj.parameters()) + list(head_blocks.parameters()) + list(cls.parameters())
opt = torch.optim.AdamW(
    [{"params": trained, "lr": job["text_lr"]}, {"params": head, "lr": job["lr"]}], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01
)


def step(B, T):
    ids = torch.randint(V // 3, V // 3 + max(1, V // 3), (B, T))  # the bench's rows use the vocabulary's middle third too
    mask = torch.ones(B, T)
    for b in range(B):
        if b % 4:
            mask[b, T - b % 4:] = 0
    y = torch.arange(B) % classes
    bias = ((1 - mask) * -1e9)[:, None, None, :]
    frozen = L - min(K, L)
    with torch.set_grad_enabled(K > L):
        x = emb_ln(emb["word"](ids) + emb["pos"](torch.arange(T))[None] + emb["tok_type"](torch.zeros_like(ids)))
    with torch.no_grad():
        for blk in blocks[:frozen]:
            x = blk(x, bias)
    for blk in blocks[frozen:]:
        x = blk(x, bias)
    x = proj(x)
    for blk in head_blocks:
        x = blk(x, bias)
    m = mask[:, :, None]
    loss = F.cross_entropy(cls((x * m).sum(1) / m.sum(1)), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if trained:
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
    torch.nn.utils.clip_grad_norm_(head, 1.0)
    opt.step()
    return loss.item()


print("ready " + json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 3 or parts[0] != "run":
        print(f"error: expected 'run B T', got '{line.strip()}'", flush=True)
        continue
    loss = step(int(parts[1]), int(parts[2]))
    print(f"done {loss}" if math.isfinite(loss) else f"error: loss {loss}", flush=True)
