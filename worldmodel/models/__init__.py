"""Level-0 video models: the V-JEPA encoder, predictor and their building blocks."""

from worldmodel.models.encoder import MODEL_PRESETS, VideoEncoder, VideoViTConfig, get_preset
from worldmodel.models.predictor import VideoPredictor

__all__ = ["MODEL_PRESETS", "VideoEncoder", "VideoPredictor", "VideoViTConfig", "get_preset"]
