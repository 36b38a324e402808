"""Image paths of a directory, a list file or a split file: what the tools embed or search."""
import os

from .meta import SPLIT_HEADER, read_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def _walk_images(source, what):
    found = []
    for folder, subfolders, files in os.walk(source):
        subfolders.sort()
        found.extend(os.path.join(folder, name) for name in sorted(files)
                     if name.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise ValueError("no %s images under %s (%s)" % ("/".join(IMAGE_EXTENSIONS), source, what))
    return found


def _folder_labels(source, paths):
    """Class names when every image sits in a class folder one level below ``source`` (the
    ``DIR/<class>/*.jpg`` layout of --data_name=folder), else None."""
    root = os.path.abspath(source)
    labels = []
    for path in paths:
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.dirname(parent) != root:
            return None
        labels.append(os.path.basename(parent))
    return labels


def _listed_images(source, what):
    base = os.path.dirname(os.path.abspath(source))
    try:
        with open(source, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError("cannot read the image list %s: %s" % (source, error)) from None
    lines = [line for line in lines if line and not line.startswith("#")]
    labels = None
    if lines and lines[0] == SPLIT_HEADER:
        paths, labels = read_split(source, base)
        labels = [str(label) for label in labels]
    else:
        paths = [line if os.path.isabs(line) else os.path.join(base, line) for line in lines]
    if not paths:
        raise ValueError("the image list %s (%s) lists no images" % (source, what))
    return paths, labels


def list_labeled_images(source, what="--images"):
    """``(paths, labels)``: the image paths (absolute) of a directory walked recursively (.jpg .jpeg
    .png .bmp, sorted), a text file with one path per line (relative to the file), or a split file;
    and each image's class as a string when the source says it (a split file's class column, or a
    directory of class folders), else None. ``what`` names the flag in errors."""
    if os.path.isdir(source):
        paths = _walk_images(source, what)
        labels = _folder_labels(source, paths)
    elif os.path.isfile(source):
        paths, labels = _listed_images(source, what)
    else:
        raise ValueError("%s %s is neither a directory nor a file" % (what, source))
    return [os.path.abspath(path) for path in paths], labels
