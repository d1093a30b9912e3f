"""Faces: identity embedding, face detectors (:mod:`.detectors`), dlib landmarks and facial masks (:mod:`.landmarks`)."""

from .identity import IdentityEmbedder, MobileFaceNet, get_embedder

__all__ = ["MobileFaceNet", "IdentityEmbedder", "get_embedder"]
