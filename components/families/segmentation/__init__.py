"""Semantic segmentation: FCN, U-Net, SegNet (max-unpooling) and a dilated context network."""

from components.families.segmentation.task import SegmentationTask, build_task, load_exported

MODELS = ("fcn", "unet", "segnet", "dilated")
EXPERIMENT = "segmentation"
HEADLINE_METRIC = "val/miou"

__all__ = ["MODELS", "EXPERIMENT", "HEADLINE_METRIC", "SegmentationTask", "build_task", "load_exported"]
