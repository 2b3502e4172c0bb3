"""Image inputs of the tools: listing a file / folder / list of them (no link loops, each file
once) and telling why an image cannot be used (empty, not decodable, too large)."""
from __future__ import annotations

import glob
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def list_images(inputs: Union[str, Sequence[str]], recursive: bool = False) -> List[str]:
    """Image files of a file, a folder (``recursive``: and its subfolders, e.g. one per
    class) or a list of either, sorted. Folder links are not followed into (a link to a
    parent folder would never end), and a file reached twice (through a file link) is
    listed once."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    out: List[str] = []
    seen = set()

    def add(path: str) -> None:
        real = osp.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append(path)

    for item in items:
        if osp.isdir(item):
            if recursive:
                found = []
                for d, dirs, files in os.walk(item, followlinks=False):
                    dirs.sort()
                    found += [osp.join(d, f) for f in files if f.lower().endswith(IMG_EXTS)]
            else:
                found = [p for p in glob.glob(osp.join(item, '*'))
                         if p.lower().endswith(IMG_EXTS) and osp.isfile(p)]
            for p in sorted(found):
                add(p)
        elif osp.isfile(item):
            add(item)
        else:
            raise FileNotFoundError(f'Input {item} is neither an image file nor a folder')
    if not out:
        raise FileNotFoundError(f'No images ({", ".join(IMG_EXTS)}) in {inputs}')
    return out


MAX_PIXELS = 64 * 2**20  # 8192 x 8192: beyond it a drawing alone takes gigabytes


def check_image(path: str, max_pixels: int = MAX_PIXELS) -> Optional[str]:
    """Why ``path`` cannot be used (None when it can): not decodable, or larger than
    ``max_pixels`` (the pipelines resize after decoding the whole image)."""
    import cv2
    import numpy as np
    if osp.getsize(path) == 0:
        return 'is empty (0 bytes)'
    try:
        buf = np.fromfile(path, dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except (OSError, ValueError, cv2.error) as e:
        return f'cannot be read ({e})'
    if img is None:
        return 'is not a decodable image (damaged, empty or another format)'
    h, w = img.shape[:2]
    if h * w > max_pixels:
        return (f'is {w} x {h} pixels, more than the {max_pixels / 2**20:.0f} MP limit: '
                'downscale it, or raise the limit with --max-pixels')
    return None
