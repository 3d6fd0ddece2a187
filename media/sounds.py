"""What the player plays, by name: the prompt libraries, the ringbacks, and :class:`Sound`, the description of a sound.

A call's media never hands frames across a process boundary: it names what to
play (:class:`Sound`: prompt names in the call's library, a tone, the profile's
ringback setting), and whoever runs the player (the node itself, or a media
worker, :mod:`media.worker`) turns the name into frames from its own
:class:`PromptLibraries` and :class:`Ringbacks`, loaded at start and reload.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Iterable

from .library import PromptLibrary, recording_frames
from .tones import RINGBACK_CADENCES, ringback_tone, warning_tone

__all__ = ["PromptLibraries", "Ringbacks", "Sound", "RINGBACK_FILE_MAX_S", "NO_RINGBACK", "ringback_name",
           "PROMPTS", "TONE", "RINGBACK"]

#: the kinds of :class:`Sound`
PROMPTS = "prompts"
TONE = "tone"
RINGBACK = "ringback"
#: the tones a :class:`Sound` may name
TONES = {"warning": warning_tone}


@dataclass(frozen=True)
class Sound:
    """A sound described: ``kind`` PROMPTS (``names`` in the call's prompt library), TONE (``name`` of
    :data:`TONES`) or RINGBACK (``name`` is the profile's ringback setting: a cadence or a music file)."""

    kind: str
    names: tuple[str, ...] = ()
    name: str = ""

    def to_wire(self) -> dict:
        return {"kind": self.kind, "names": list(self.names), "name": self.name}

    @classmethod
    def from_wire(cls, d: dict) -> "Sound":
        return cls(str(d["kind"]), tuple(str(n) for n in d.get("names", ())), str(d.get("name", "")))


def ringback_name(setting: str) -> str | None:
    """What a profile's ringback setting plays, by name: the cadence, the music file's name; None for none."""
    if not setting or setting == NO_RINGBACK:
        return None
    return setting if setting in RINGBACK_CADENCES else os.path.basename(setting)


# -- prompt libraries --------------------------------------------------------------------

class PromptLibraries:
    """One :class:`PromptLibrary` per (language, operator's prompts folder), made once and shared by calls."""

    def __init__(self, folder: str | pathlib.Path | None = None) -> None:
        self.folder = folder
        self._libraries: dict[tuple[str, str], PromptLibrary] = {}

    def get(self, lang: str, prompts_dir: str = "") -> PromptLibrary:
        key = (lang, prompts_dir or "")
        library = self._libraries.get(key)
        if library is None:
            library = PromptLibrary(self.folder, lang, prompts_dir or None)
            self._libraries[key] = library
        return library

    def preload(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Load every built-in prompt of each (language, prompts_dir) now; raises PromptError naming a bad file."""
        return sum(self.get(lang, prompts_dir).preload() for lang, prompts_dir in set(pairs))

    def refresh(self, pairs: Iterable[tuple[str, str]]) -> int:
        """On reload: read the operators' folders afresh (recordings may have changed), all or nothing.

        Fresh libraries for the pairs with a folder are loaded first and swapped in only when every one
        loaded; a bad recording raises PromptError and the libraries in use stay as they were.  Calls
        already running keep the library they started with.
        """
        pairs = set(pairs)
        fresh = {(lang, d): PromptLibrary(self.folder, lang, d) for lang, d in pairs if d}
        count = sum(library.preload() for library in fresh.values())
        count += sum(self.get(lang, d).preload() for lang, d in pairs if not d)
        self._libraries.update(fresh)
        return count

    def __len__(self) -> int:
        return len(self._libraries)


# -- ringback ---------------------------------------------------------------------------

#: the longest music file for the ringback: it is held in memory, in both codecs (about 1 MB a minute)
RINGBACK_FILE_MAX_S = 600
#: the profile setting that plays nothing while agents ring
NO_RINGBACK = "none"


class Ringbacks:
    """The ringbacks as the player takes them: the tones by name (made once), and the operators' music files,
    loaded whole at start and reload (:meth:`preload`, :meth:`refresh`) so that no call waits for a decoder."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, tuple[bytes, ...]]] = {}

    def get(self, setting: str) -> tuple[str, dict[str, tuple[bytes, ...]]] | None:
        """(what plays: the tone's name or the file's, its frames) for a profile's ``ringback``; None for
        "none".  A file not loaded yet is loaded now; raises PromptError naming a bad one."""
        if not setting or setting == NO_RINGBACK:
            return None
        if setting in RINGBACK_CADENCES:
            return setting, ringback_tone(setting)
        frames = self._files.get(setting)
        if frames is None:
            frames = self._files[setting] = recording_frames(setting, max_s=RINGBACK_FILE_MAX_S)
        return os.path.basename(setting), frames

    def preload(self, files: Iterable[str]) -> int:
        """Load each file now; raises PromptError naming the first bad one."""
        for path in files:
            self.get(path)
        return len(self._files)

    def refresh(self, files: Iterable[str]) -> int:
        """On reload: every file read afresh (the operator may have replaced it), all or nothing: a bad file
        raises PromptError and the files in use stay as they were."""
        fresh = {path: recording_frames(path, max_s=RINGBACK_FILE_MAX_S) for path in set(files)}
        self._files = fresh
        return len(fresh)


