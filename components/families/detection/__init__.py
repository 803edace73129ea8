"""Object detection: torchvision's Faster R-CNN, RetinaNet, SSD, FCOS and Mask R-CNN on a small
backbone sized for the images, our YOLO-style grid detector and DETR-style set predictor;
scored by COCO AP (faster-coco-eval) and PASCAL VOC AP."""
