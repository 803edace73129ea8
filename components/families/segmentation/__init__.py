"""Semantic segmentation: FCN, U-Net, SegNet (max-unpooling) and a dilated context network."""
