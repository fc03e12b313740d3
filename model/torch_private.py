"""torch's private functions that CPU inference uses, each looked up here and nowhere else.

They are not torch's public API: a release may rename or drop any of them. A missing one is
None here, warned about once, and the precisions that need it run fp32 instead
(model.inference.runnable), so a newer torch still tags, only perhaps more slowly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import reduce

import torch

log = logging.getLogger(__name__)

INT_MM = "_int_mm"  # int8 x int8 -> int32 matrix product
AMX = "cpu._is_amx_tile_supported"
AVX512_BF16 = "cpu._is_avx512_bf16_supported"
VNNI = "cpu._is_vnni_supported"
MKLDNN_BF16 = "ops.mkldnn._is_mkldnn_bf16_supported"  # whether torch's oneDNN has bf16 kernels
CPU_PROBES = (AMX, AVX512_BF16, VNNI)

_warned: set[str] = set()


def private(name: str) -> Callable | None:
    """``torch.<name>`` (a dotted path below torch), or None where this torch has none."""
    try:
        return reduce(getattr, name.split("."), torch)
    except (AttributeError, RuntimeError):  # torch.ops raised RuntimeError for unknown ops in older releases
        if name not in _warned:
            _warned.add(name)
            log.warning("torch %s has no torch.%s: precisions that need it run fp32", torch.__version__, name)
        return None


def probe(name: str) -> bool:
    """What the probe ``name`` says of this CPU or build; False where this torch lacks it."""
    found = private(name)
    return bool(found is not None and found())
