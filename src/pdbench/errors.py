"""Errors that pdbench raises for bad input. Each message names the problem and the fix in one line."""


class PdbenchError(Exception):
    """Base class: a user-facing problem with a one-line explanation."""


class AssetMissingError(PdbenchError, FileNotFoundError):
    """A checkpoint, weight file or dataset is not in the asset directory."""


class AssetCorruptError(PdbenchError):
    """A file exists but its checksum or content is wrong (tampered, truncated, wrong file)."""


class UnknownNameError(PdbenchError, KeyError):
    """A method, generator, metric or transform name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(PdbenchError, ValueError):
    """An image, tensor or config that does not fit what is expected."""
