"""Device choice shared by training, tagging and workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """CUDA was asked for on a node without it."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA when this node has a GPU; asking for CUDA without one is an error."""
    import torch  # here, not above: commands that only name a device (--device) stay quick

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda was asked for, but torch sees no CUDA device on this node")
    return device
