"""Measuring models: params / ParC-aware FLOPs / effective receptive fields (complexity), the
speed benchmark (benchmark), drawings of predictions (visualize)."""
