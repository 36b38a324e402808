"""Using a trained network outside training: load it (``trained_network``), in another precision
with its BatchNorms folded (``embedding_graph``, ``batchnorm_folding``), embed image files and keep
their embeddings (``image_embeddings``), search a gallery (``gallery_search``) and evaluate a test
split or stored embeddings (``evaluation``). ``embed.py`` and ``evaluate.py`` call these; ``flags``
holds the flags they share with main.py."""
