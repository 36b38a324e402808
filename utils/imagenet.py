"""The ImageNet statistics the pretrained backbones were trained with: the per-channel mean and
standard deviation of pixel values scaled to [0, 1], in RGB order (the original release's Normalize
transform). The network normalises its input with them (``model.embedding.InputNormalization``);
``data.transforms`` names them for the tools that normalise outside it."""

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
