"""The self-supervised family: encoders pretrained without labels, judged by linear probes."""
