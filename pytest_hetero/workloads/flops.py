"""Model FLOPs of one training step, counted on the ``meta`` device.

``torch.utils.flop_counter`` counts matrix multiplications and convolutions.
Its formula for ``aten.convolution_backward`` (torch 2.13) leaves ``groups``
out of the weight-gradient term: it counts a grouped convolution's weight
gradient as if every input channel met every output channel, ``groups``
times too much. A depthwise 3×3 convolution over 728 channels then counts
730× its forward instead of 3× (forward, input gradient, weight gradient),
and DeepCAM's Xception, full of them, 2.2× its real compute.
:func:`conv_backward_flop` replaces that formula: each gradient of a
convolution costs what its forward costs (the same multiply-adds, reordered),
which holds for grouped, depthwise, dilated and transposed convolutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["conv_backward_flop", "count_train_flops", "flop_counter"]


def conv_backward_flop(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: Sequence[bool],
    out_shape: Any = None,
    **_kwargs: Any,
) -> int:
    """FLOPs of ``aten.convolution_backward``: the forward's count per gradient asked for.

    The forward count uses the weight's shape ``(C_out, C_in / groups, k...)``
    (``(C_in, C_out / groups, k...)`` when transposed), so groups are in it.
    """
    from torch.utils.flop_counter import conv_flop_count

    # the forward's output has the shape of the gradient that flows back into it
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> Any:
    """A ``FlopCounterMode`` with :func:`conv_backward_flop` in place of torch's formula."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop})


def count_train_flops(
    build: Callable[[], Any], make_batch: Callable[[], tuple[Any, Any]], loss_fn: Any
) -> float | None:
    """FLOPs of one training step (forward + backward) on the batch ``make_batch`` returns.

    ``build`` and ``make_batch`` run under ``torch.device("meta")``: nothing is
    allocated and nothing computed. Returns None when an operator cannot run on
    meta tensors.
    """
    import torch

    try:
        with torch.device("meta"):
            model = build()
            inputs, targets = make_batch()
        with flop_counter() as counter:
            loss_fn(model(inputs), targets).backward()
    except (RuntimeError, NotImplementedError, TypeError):
        return None
    return float(counter.get_total_flops())
