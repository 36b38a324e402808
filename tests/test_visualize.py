"""Retrieval grids and the embedding projector: layout, colours, neighbours, files TensorBoard reads."""
import os

import cv2
import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
from tensorboardX import SummaryWriter

from utils.metrics import nearest_neighbors
from utils.summary.grid import (GREEN, QUERY_COLOUR, RED, grid_layout, grid_legend, header_height,
                                log_retrieval_grid, pick_fixed_queries, query_neighbors, retrieval_grid)
from utils.summary.projector import log_projector, subsample_indices


def _flat(value, size=10):
    return np.full((size, size, 3), value, dtype=np.uint8)


def _cell(grid, row, col, thumb, border, caption=0):
    cell_h, cell_w, gap = grid_layout(thumb, border, caption)
    top, left = gap + row * (cell_h + gap), gap + col * (cell_w + gap)
    return grid[top:top + cell_h, left:left + cell_w]


def test_grid_shape_and_border_colours():
    thumb, border = 16, 2
    queries = [_flat(10), _flat(20, size=30)]
    results = [[_flat(100), _flat(110), _flat(120)], [_flat(130), _flat(140), _flat(150)]]
    correct = [[True, False, True], [False, False, True]]
    grid = retrieval_grid(queries, results, correct, thumb=thumb, border=border)
    cell_h, cell_w, gap = grid_layout(thumb, border)
    assert grid.dtype == np.uint8, "grid dtype %s" % grid.dtype
    assert grid.shape == (2 * (cell_h + gap) + gap, 4 * (cell_w + gap) + gap, 3), \
        "grid shape %s" % (grid.shape,)
    for row in range(2):
        for col in range(4):
            cell = _cell(grid, row, col, thumb, border)
            want = QUERY_COLOUR if col == 0 else (GREEN if correct[row][col - 1] else RED)
            frame = np.concatenate([cell[:border].reshape(-1, 3), cell[-border:].reshape(-1, 3),
                                    cell[:, :border].reshape(-1, 3), cell[:, -border:].reshape(-1, 3)])
            assert (frame == np.array(want, dtype=np.uint8)).all(), \
                "cell (%d, %d): frame must be exactly %s" % (row, col, want)
            inner = cell[border:-border, border:-border]
            value = (10, 20)[row] if col == 0 else results[row][col - 1][0, 0, 0]
            assert inner.shape == (thumb, thumb, 3) and (inner == value).all(), \
                "cell (%d, %d): thumbnail of value %d expected" % (row, col, value)


def test_grid_without_classes_and_with_captions():
    grid = retrieval_grid([_flat(0)], [[_flat(0), _flat(0)]], None, thumb=32, border=3,
                          captions=[["query", "0.12", "0.34"]])
    assert grid.shape[0] > 32 + 6 + 3, "captions add a strip under the cells: %s" % (grid.shape,)
    cell = grid[3:3 + 38, 3 + 41:3 + 41 + 38]
    assert (cell[0] == 128).all(), "unknown classes draw grey frames"
    strip = grid[3 + 38:3 + 38 + 12, 3:3 + 38]
    assert strip.max() > 100, "the caption text is drawn"


def test_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        retrieval_grid([np.zeros((4, 4, 3), np.float32)], [[_flat(0)]], [[True]])
    with pytest.raises(ValueError, match="shape"):
        retrieval_grid([_flat(0)], [[_flat(0)]], [[True, False]])
    with pytest.raises(ValueError, match="same number of results"):
        retrieval_grid([_flat(0), _flat(0)], [[_flat(0)], []], None)


def _toy():
    # Two tight clusters on a line; class 1 is {0, 1, 2}, class 2 is {3, 4}, 5 is a class-1 outlier
    # that sits next to class 2.
    points = np.array([[0.0], [0.1], [0.3], [5.0], [5.2], [4.9]], dtype=np.float32)
    embeddings = np.hstack([points, np.ones_like(points)])  # not unit: distances differ after norm
    labels = np.array([1, 1, 1, 2, 2, 1])
    return embeddings, labels


def test_query_neighbors_agree_with_metrics_and_exclude_self():
    embeddings, _ = _toy()
    got, dist = query_neighbors(embeddings, [0, 3, 5], 3)
    want = nearest_neighbors(embeddings, 3)[[0, 3, 5]]
    assert np.array_equal(got, want), "query_neighbors %s differs from nearest_neighbors %s" % (got, want)
    assert got.tolist() == [[1, 2, 5], [5, 4, 2], [3, 4, 2]], "neighbours by hand: %s" % got.tolist()
    assert np.allclose(dist[0], [0.1, 0.3, 4.9], atol=1e-5), "Euclidean distances: %s" % dist[0]
    tie = np.array([[0.0], [1.0], [-1.0]], dtype=np.float32)
    assert query_neighbors(tie, [0], 2)[0].tolist() == [[1, 2]], "ties go to the smaller index"


def test_pick_fixed_queries_is_deterministic_and_distinct():
    labels = np.repeat(np.arange(20), 5)
    labels[-1] = 99  # a class of one image
    first = pick_fixed_queries(labels, n=8, seed=0)
    assert np.array_equal(first, pick_fixed_queries(labels, n=8, seed=0)), "same seed, same queries"
    assert len(first) == 8 and len(set(labels[first].tolist())) == 8, "8 distinct classes: %s" % labels[first]
    assert 99 not in labels[first], "classes of one image come last"
    assert not np.array_equal(first, pick_fixed_queries(labels, n=8, seed=1)), "the seed matters"
    assert len(pick_fixed_queries(np.array([3, 3, 4]), n=8)) == 2, "one query per class when fewer classes"


def test_log_retrieval_grid_writes_an_image(tmp_path):
    embeddings, labels = _toy()
    images = [_flat(40 * i) for i in range(6)]
    writer = SummaryWriter(str(tmp_path))
    grid = log_retrieval_grid(writer, "retrieval/test", embeddings, labels, lambda i: images[i],
                              [0, 5], step=7, k=8, thumb=16, border=2)
    writer.close()
    # After L2 normalisation 5 = (4.9, 1)/|.| is nearest to 3 and 4 (class 2): red, red, then green.
    want_neighbors = nearest_neighbors(embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True), 5)
    # Below the legend (2 lines) and the column titles; class ids under the cells.
    top = header_height(16, column_titles=[""] * 6, legend=grid_legend(5))
    assert top == 3 * 12, "two legend lines and a title line of 12 px: %d" % top
    caption = 12
    cell_h, cell_w, gap = grid_layout(16, 2, caption)
    assert grid.shape == (top + 2 * (cell_h + gap) + gap, 6 * (cell_w + gap) + gap, 3), \
        "k is capped at N - 1 = 5: %s" % (grid.shape,)
    assert grid[:top].max() > 200, "the legend and the titles are drawn"
    for row, query in enumerate([0, 5]):
        for col, neighbour in enumerate(want_neighbors[query], start=1):
            cell = _cell(grid[top:], row, col, 16, 2, caption)
            colour = GREEN if labels[neighbour] == labels[query] else RED
            assert (cell[0, 0] == colour).all(), "query %d, rank %d: frame %s" % (query, col, cell[0, 0])
            assert (cell[8, 8] == 40 * neighbour).all(), \
                "query %d, rank %d: image of row %d" % (query, col, neighbour)
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})  # as TensorBoard reads it
    events.Reload()
    metadata = events.SummaryMetadata("retrieval/test")
    assert metadata.plugin_data.plugin_name == "images", "an image of the images plugin: %s" % metadata
    logged = events.Tensors("retrieval/test")[0]
    width, height, png = logged.tensor_proto.string_val
    assert logged.step == 7 and (int(height), int(width)) == grid.shape[:2], \
        "logged image step %d, size %sx%s" % (logged.step, height, width)
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert np.array_equal(decoded, grid), "the PNG holds the grid"
    description = metadata.summary_description
    assert "green" in description and "class id" in description, "the tag's description: %r" % description


def test_grid_captions_are_the_class_ids(tmp_path):
    embeddings, labels = _toy()
    images = [_flat(0) for _ in range(6)]
    grids = [log_retrieval_grid(SummaryWriter(str(tmp_path / name)), "g", embeddings, value, lambda i: images[i],
                                [0], step=0, k=2, thumb=16, border=2)
             for name, value in (("a", labels), ("b", labels + 7))]
    top = header_height(16, column_titles=[""] * 3, legend=grid_legend(2))
    assert np.array_equal(grids[0][:top], grids[1][:top]), "the header does not depend on the classes"
    assert not np.array_equal(grids[0][top:], grids[1][top:]), "the class ids are drawn under the cells"


def test_log_projector_writes_the_projector_files(tmp_path):
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 4)).astype(np.float32)
    labels = np.repeat(np.arange(10), 5)
    thumbnails = rng.integers(0, 256, size=(50, 20, 20, 3)).astype(np.uint8)
    rows = log_projector(str(tmp_path), embeddings, labels, thumbnails, step=3, max_points=20)
    calls = []
    log_projector(str(tmp_path), embeddings, labels, lambda i: calls.append(i) or thumbnails[i], step=4,
                  max_points=20, tag="by_callable")
    log_projector(str(tmp_path), embeddings, labels, thumbnails, step=3, max_points=20)  # a resume's repeat
    assert np.array_equal(rows, subsample_indices(50, 20)) and len(set(rows.tolist())) == 20, \
        "20 distinct, evenly spaced rows: %s" % rows
    assert calls == rows.tolist(), "a thumbnail callable is asked for the subsampled rows only"
    config = open(os.path.join(str(tmp_path), "projector_config.pbtxt")).read()
    assert "test_embeddings:00003" in config and "by_callable:00004" in config, config
    assert config.count("test_embeddings:00003") == 1, "an embedding written again gets no second entry"
    parsed = text_format.Parse(config, ProjectorConfig())  # as TensorBoard's projector reads it
    assert [e.tensor_name for e in parsed.embeddings] == ["test_embeddings:00003", "by_callable:00004"], config
    assert parsed.embeddings[0].sprite.single_image_dim == [32, 32], "thumbnails of 32 px (thumb)"
    assert 'tensor_path: "projector/00003/test_embeddings/tensors.tsv"' in config, config
    folder = os.path.join(str(tmp_path), "projector", "00003", "test_embeddings")
    tensors = np.loadtxt(os.path.join(folder, "tensors.tsv"), delimiter="\t")
    assert np.allclose(tensors, embeddings[rows], atol=1e-5), "tensors.tsv holds the subsampled rows"
    metadata = open(os.path.join(folder, "metadata.tsv")).read().split()
    assert metadata == [str(v) for v in labels[rows]], "metadata.tsv holds their labels"
    sprite = cv2.imread(os.path.join(folder, "sprite.png"))[:, :, ::-1]
    assert sprite.shape == (5 * 32, 5 * 32, 3), "20 thumbnails of 32 px, 5 a row: %s" % (sprite.shape,)
    first = cv2.resize(thumbnails[rows[0]], (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(sprite[:32, :32], first), "the first row's thumbnail comes first"
    assert not sprite[4 * 32:, 0:].any(), "no thumbnail after the 20th: the last row is black"


def test_subsample_is_deterministic_and_covers_the_range():
    rows = subsample_indices(1000, 7)
    assert rows[0] == 0 and rows[-1] == 999 and np.all(np.diff(rows) > 0), "evenly spaced: %s" % rows
    assert np.array_equal(subsample_indices(5, 10), np.arange(5)), "all rows when few"
