"""Reading input files in Python as the native core reads them: regular files only.

A FIFO named like an image would block the open forever, and a link to ``/dev/zero``
would be read until memory runs out. So a file is opened read-only and non-blocking (a
FIFO opens at once), never as a controlling terminal, and the open descriptor is
checked: anything but a regular file (links followed) is refused with "not a regular
file" before a byte is read, and no file is read past a size bound.
"""

from __future__ import annotations

import io
import os
import stat

#: The most an image file may hold: eight bytes per pixel of the default pixel limit
#: (200 MP) plus 64 MiB, as the native decoder allows.
IMAGE_MAX_BYTES = 200_000_000 * 8 + (64 << 20)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(path, mode: int) -> OSError:
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return OSError(f"{os.fsdecode(path)}: not a regular file ({kind}); only regular files are read")


def read_regular(path, max_bytes: int = IMAGE_MAX_BYTES) -> bytes:
    """The bytes of the regular file at `path` (links followed); OSError naming the file
    when it is not a regular file or holds more than `max_bytes`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        # A socket cannot be opened at all: say what it is instead.
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode) from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        too_large = OSError(f"{os.fsdecode(path)}: too large: over the limit of {max_bytes} bytes")
        if st.st_size > max_bytes:
            raise too_large
        data = f.read(st.st_size + 1)
        # Grown since: read on in pieces, no further than the bound.
        while st.st_size < len(data) <= max_bytes:
            piece = f.read(min(1 << 24, max_bytes + 1 - len(data)))
            if not piece:
                break
            data += piece
        if len(data) > max_bytes:
            raise too_large
        return data


def open_image(path):
    """The image at `path` opened by Pillow from its bytes (see :func:`read_regular`)."""
    from PIL import Image

    return Image.open(io.BytesIO(read_regular(path)))


def pil_loader(path):
    """torchvision's default image loader (an RGB Pillow image), reading only regular
    files."""
    with open_image(path) as img:
        return img.convert("RGB")
