"""Object detection: torchvision's Faster R-CNN, RetinaNet, SSD, FCOS and Mask R-CNN on a small
backbone sized for the images, our YOLO-style grid detector and DETR-style set predictor;
scored by COCO AP (faster-coco-eval) and PASCAL VOC AP."""

from components.families.detection.task import DetectionTask, build_task, load_exported

MODELS = ("faster_rcnn", "retinanet", "ssd", "fcos", "yolo", "detr", "mask_rcnn")
EXPERIMENT = "detection"
HEADLINE_METRIC = "val/map"

__all__ = ["MODELS", "EXPERIMENT", "HEADLINE_METRIC", "DetectionTask", "build_task", "load_exported"]
