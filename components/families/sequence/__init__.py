"""Sequence models: translation and captioning."""
