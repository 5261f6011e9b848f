"""int8 quantization: calibration readers over clips or image folders, QDQ models, cached like models."""

from .calibration import data_digest, frames_from_clip, images_from_folder, random_crops
from .qdq import METHODS, quantize, quantize_arrays

__all__ = [
    "METHODS",
    "data_digest",
    "frames_from_clip",
    "images_from_folder",
    "quantize",
    "quantize_arrays",
    "random_crops",
]
