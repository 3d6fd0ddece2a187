#!/usr/bin/env python3
"""Record the built-in prompt set with espeak-ng and sox.

Every prompt in ``media.phrases.PROMPT_TEXTS`` is spoken by espeak-ng (voices
``de`` and ``en``), resampled by sox to 8 kHz mono 16-bit (sox's ``rate``
low-pass filters first), trimmed of leading and trailing silence, and written
to ``media/prompts/<lang>/<name>.wav``.  The WAVs are committed, so an install
needs no speech engine; run this again only when a text changes.  A new
prompt is recorded alone with ``--names``: the others stay byte-identical
(another espeak-ng version would speak them slightly differently).

    python scripts/make_prompts.py [--out media/prompts] [--speed 180] [--only de] [--names pin_locked,...]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media.phrases import PROMPT_TEXTS  # noqa: E402

# Trim silence below 0.5 % of full scale at both ends (sox: trim, reverse, trim, reverse).
_TRIM = ["silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse"]


def record(text: str, voice: str, speed_wpm: int, out: pathlib.Path, tmp: pathlib.Path) -> None:
    raw = tmp / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(raw), text],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                    str(out), "gain", "-n", "-3", *_TRIM], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "media" / "prompts")
    ap.add_argument("--speed", type=int, default=180, help="words per minute")
    ap.add_argument("--only", choices=sorted(PROMPT_TEXTS), help="one language")
    ap.add_argument("--names", help="only these prompts (comma separated); nothing else is touched")
    args = ap.parse_args(argv)
    names = set(args.names.split(",")) if args.names else None
    unknown = (names or set()) - {name for texts in PROMPT_TEXTS.values() for name in texts}
    if unknown:
        print(f"make_prompts: no such prompt: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"make_prompts: {tool} is not installed", file=sys.stderr)
            return 1
    total = 0
    with tempfile.TemporaryDirectory() as tmpdir:
        for lang, texts in sorted(PROMPT_TEXTS.items()):
            if args.only and lang != args.only:
                continue
            folder = args.out / lang
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in sorted(texts.items()):
                if names is not None and name not in names:
                    continue
                out = folder / f"{name}.wav"
                record(text, lang, args.speed, out, pathlib.Path(tmpdir))
                total += out.stat().st_size
            for stale in folder.glob("*.wav") if names is None else ():
                if stale.stem not in texts:
                    stale.unlink()
    count = sum(len(t) if names is None else len(names & t.keys()) for t in PROMPT_TEXTS.values())
    print(f"make_prompts: {count} prompts, {total // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
