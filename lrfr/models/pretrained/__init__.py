"""Public face-recognition models in lrfr: checkpoint converters (insightface arcface_torch, AdaFace),
dlib's ``.dat`` reader and its ResNet's weights, and safe checkpoint reading."""
