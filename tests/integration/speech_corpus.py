"""Speech round trip helpers shared by test_51_speech_roundtrip.py and
bench/tts_bench.py: ten test sentences, recognition of a WAV by Debian's
pocketsphinx (an independent recognizer with its own en-us model), and the
word error rate against what was said."""
import os
import re
import shutil
import subprocess
import tempfile

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back tomorrow morning.",
    "The weather today is sunny and warm.",
    "I would like to order a cup of coffee.",
    "Open the door and turn on the lights.",
    "We need to finish the report before Friday.",
    "My brother plays the piano every evening.",
    "The train to the city leaves at noon.",
    "Can you tell me where the library is?",
    "They planted three trees in the garden.",
]


def words(text):
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def wer(ref, hyp):
    """Word error rate: word-level edit distance / reference words."""
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


def have_pocketsphinx():
    return bool(shutil.which("pocketsphinx_continuous")) and os.path.isdir(
        "/usr/share/pocketsphinx/model/en-us/en-us")


def recognise(audio_path):
    """Text pocketsphinx hears in an audio file (any format ffmpeg reads)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav16 = os.path.join(tmp, "16k.wav")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", audio_path, "-ar", "16000", "-ac", "1",
                        "-c:a", "pcm_s16le", wav16], check=True)
        out = subprocess.run(["pocketsphinx_continuous", "-infile", wav16, "-logfn", os.devnull],
                             capture_output=True, text=True, timeout=300, check=True)
    return " ".join(out.stdout.split())


def sentence_wer(audio_paths):
    """Overall WER of SENTENCES spoken one file each (words over all of them)."""
    errors = total = 0
    for text, path in zip(SENTENCES, audio_paths):
        n = len(words(text))
        errors += wer(text, recognise(path)) * n
        total += n
    return errors / total
