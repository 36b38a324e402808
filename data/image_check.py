"""A cheap check that every image of a split can be opened, before a run writes anything.

A full decode of CARS196 costs minutes and of SOP far more, so the check reads each file's header
only (format, size) with Pillow, and for formats Pillow does not know asks OpenCV, which decodes
the images in training, whether it has a reader for the file. A file that passes and still fails
to decode later (truncated data after a good header) stops the run with a message naming it.
"""
import cv2
from PIL import Image, UnidentifiedImageError


def header_reads(path):
    """True when ``path`` opens as an image (its header parses)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
        return width > 0 and height > 0
    except UnidentifiedImageError:
        return bool(cv2.haveImageReader(path))
    except (OSError, ValueError, SyntaxError):
        return False


def unreadable_images(paths):
    """The paths whose header does not read, in order."""
    return [path for path in paths if not header_reads(path)]
