"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired) from label maps to scenes."""
