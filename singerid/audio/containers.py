"""What a container's own header says about its length, where libsndfile does not tell us.

libsndfile clamps a WAV's frame count to the bytes actually present, so a cut-off WAV looks
whole; the RIFF ``data`` chunk still declares the original size. FLAC (STREAMINFO) and MP3
(Xing / VBRI / LAME frame counts) lengths already come through libsndfile's ``frames``; Ogg
declares no length at all, so a cut-off Ogg file can only be caught when its last page is torn.
"""

from __future__ import annotations

import struct
from pathlib import Path

_MAX_CHUNKS = 64  # chunks scanned before giving up (a RIFF header is a handful)


def declared_wav_frames(path: Path) -> int | None:
    """Frames the RIFF/RIFX ``data`` chunk declares, or None when the header does not say.

    None for RF64 and streaming WAVs (size 0 or 0xFFFFFFFF), unknown layouts and read errors:
    this only ever adds a check, never refuses a file by itself.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RIFX"):
                return None
            endian = "<" if head[:4] == b"RIFF" else ">"
            block_align = None
            for _ in range(_MAX_CHUNKS):
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                chunk_id, size = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
                if chunk_id == b"fmt ":
                    fmt = f.read(min(size, 16))
                    if len(fmt) < 16:
                        return None
                    block_align = struct.unpack(endian + "H", fmt[12:14])[0]
                    f.seek(size - len(fmt) + (size & 1), 1)
                elif chunk_id == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), 1)
    except (OSError, struct.error, ValueError):
        return None
    return None
