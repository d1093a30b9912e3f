"""Training deepfake generators with their official recipes (``pdbench train``)."""
