"""data.split_manifest: what the split files hold, written by the demo generator and data.prepare."""
import hashlib
import json
import os

from data.preparation import write_splits
from data.split_manifest import MANIFEST, build_manifest, manifest_sha256


def _count_split(path):
    """Per-class image counts of a split file, read here from its format (header, then id class view path)."""
    counts = {}
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()[1:]
    for line in lines:
        class_id = line.split(None, 3)[1]
        counts[class_id] = counts.get(class_id, 0) + 1
    return counts


def test_the_demo_generator_writes_a_manifest_of_its_splits(demo_dir):
    path = os.path.join(demo_dir, MANIFEST)
    assert os.path.isfile(path), "generate_demo writes split_manifest.json beside train.txt and test.txt"
    manifest = json.load(open(path))
    assert sorted(manifest["splits"]) == ["test", "train"], manifest["splits"].keys()
    for name in ("train", "test"):
        split_path = os.path.join(demo_dir, name + ".txt")
        entry, counts = manifest["splits"][name], _count_split(split_path)
        assert entry["sha256"] == hashlib.sha256(open(split_path, "rb").read()).hexdigest(), name
        assert entry["images_per_class"] == counts, "%s: images per class as the file lists them" % name
        assert entry["num_classes"] == len(counts) and entry["num_images"] == sum(counts.values()), name
    assert manifest["splits"]["train"]["num_classes"] == 8, "16 demo classes: the first 8 train"
    assert manifest_sha256(demo_dir) == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_prepared_splits_get_a_manifest_and_a_changed_split_a_new_hash(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    write_splits(str(tmp_path), [(1, 1, "a.jpg"), (2, 1, "b.jpg")], [(3, 2, "c.jpg")], "toy")
    first = manifest_sha256(str(tmp_path))
    assert first is not None, "write_splits (every data.prepare) writes the manifest"
    assert build_manifest(str(tmp_path))["splits"]["train"]["images_per_class"] == {"1": 2}
    write_splits(str(tmp_path), [(1, 1, "a.jpg")], [(3, 2, "c.jpg"), (2, 2, "b.jpg")], "toy")
    assert manifest_sha256(str(tmp_path)) != first, "another split is another manifest hash"


def test_a_dataset_without_a_manifest_has_no_hash(tmp_path):
    assert manifest_sha256(str(tmp_path)) is None
