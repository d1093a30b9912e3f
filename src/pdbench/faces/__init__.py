"""Faces: identity embedding (and, later, detectors and landmark alignment)."""

from .identity import MobileFaceNet, IdentityEmbedder, get_embedder

__all__ = ["MobileFaceNet", "IdentityEmbedder", "get_embedder"]
