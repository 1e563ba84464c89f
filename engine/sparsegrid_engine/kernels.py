"""Real sparse execution where the hardware has it, and the sizes of compressed formats.

2:4 weights run on sparse tensor cores (CUDA capability >= 8.0) through
torch.sparse.to_sparse_semi_structured, which accelerates linear/mm only. A convolution is
therefore lowered to a GEMM over channels-last patches (SparseConvAsGemm) whose weight
matrix is exactly the (out, kh*kw*in) GEMM view the 2:4 masks were built on
(sparsity.gemm_view), so the pattern the masks guarantee is the pattern the kernel needs.

The lowering runs on any device with a dense matrix (to_sparse=None); that is how it is
tested on CPU. build_sparse_model swaps eligible layers of a copy of a model and says, per
layer, what ran sparse and why the others did not.
"""

import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .sparsity import SparsityPlan, block_norms, gemm_view, target_layers

MIN_CAPABILITY = (8, 0)  # Ampere: first GPUs with sparse tensor cores


# ---------------------------------------------------------------------------------------
# Availability


def cusparselt_status() -> dict:
    """Whether this torch build has cuSPARSELt, and its version as cuSPARSELt numbers it
    (major * 1000 + minor * 100 + patch, e.g. 602 for 0.6.2); a build-time fact, no GPU needed."""
    backend = getattr(torch.backends, "cusparselt", None)
    if backend is None:
        return {"available": False, "version": None}
    try:
        available = bool(backend.is_available())
        version = backend.version() if available else None
    except Exception:  # an odd build: treat as absent rather than fail the caller
        return {"available": False, "version": None}
    return {"available": available, "version": version}


def sparse_kernel_unavailable(device) -> str | None:
    """Why no 2:4 sparse kernel can run on `device`, or None when one can."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"no sparse kernel: {device.type.upper()} (torch's 2:4 semi-structured kernels are CUDA-only)"
    if not torch.cuda.is_available():
        return "no sparse kernel: CUDA was requested but torch sees no CUDA device"
    capability = torch.cuda.get_device_capability(device)
    if capability < MIN_CAPABILITY:
        return (
            f"no sparse kernel: GPU capability {capability[0]}.{capability[1]} has no sparse tensor cores "
            "(needs 8.0 or newer)"
        )
    if not cusparselt_status()["available"]:
        # semi_structured() asks for cuSPARSELt; torch's other 2:4 backend (CUTLASS) does not cover sm90.
        return (
            f"no sparse kernel: this torch build ({torch.__version__}) has no cuSPARSELt "
            "(torch.backends.cusparselt.is_available() is False), which the 2:4 path uses"
        )
    return None


def semi_structured(weight: torch.Tensor) -> torch.Tensor:
    """A 2:4 weight matrix in torch's semi-structured format, using cuSPARSELt (needed on sm90)."""
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    SparseSemiStructuredTensor._FORCE_CUTLASS = False
    # cuSPARSELt then writes x @ W.T row-major, i.e. a lowered conv's output comes out
    # channels-last instead of (out, pixels), which the next dense layer would have to copy.
    SparseSemiStructuredTensor._FUSE_TRANSPOSE = True
    return to_sparse_semi_structured(weight.contiguous())


def is_two_four(matrix: torch.Tensor) -> bool:
    """True when every 4 consecutive entries along each row hold at least 2 zeros."""
    rows, cols = matrix.shape
    if cols % 4:
        return False
    nonzero = (matrix.reshape(rows, cols // 4, 4) != 0).sum(dim=2)
    return bool((nonzero <= 2).all())


# ---------------------------------------------------------------------------------------
# Lowering a convolution to a GEMM


class SparseConvAsGemm(nn.Module):
    """A Conv2d computed as patches @ W.T, with W the conv's (out, kh*kw*in) GEMM matrix.

    Patches are laid out (kh, kw, in) with input channels fastest, matching gemm_view, so a
    weight that is 2:4 along the GEMM rows stays 2:4 here and can be a semi-structured
    sparse tensor. 1x1 convolutions skip unfold: a channels-last view is already the
    patch matrix.
    """

    def __init__(self, conv: nn.Conv2d, to_sparse: Callable | None = None):
        super().__init__()
        reason = conv_lowering_unfit(conv)
        if reason:
            raise ValueError(f"cannot lower this convolution to a GEMM: {reason}")
        self.out_channels = conv.out_channels
        self.kernel_size = tuple(conv.kernel_size)
        self.stride = tuple(conv.stride)
        self.padding = tuple(conv.padding)
        self.dilation = tuple(conv.dilation)
        matrix = gemm_view(conv.weight.detach()).contiguous()
        self.weight = nn.Parameter(to_sparse(matrix) if to_sparse else matrix, requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def _patches(self, x: torch.Tensor):
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        if (kh, kw) == (1, 1) and (ph, pw) == (0, 0):
            x = x[:, :, ::sh, ::sw]
            ho, wo = x.shape[2], x.shape[3]
            return x.permute(0, 2, 3, 1).reshape(n * ho * wo, c), ho, wo
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        # unfold orders a patch (in, kh, kw); the GEMM rows are (kh, kw, in).
        cols = cols.view(n, c, kh * kw, ho * wo).permute(0, 3, 2, 1).reshape(n * ho * wo, kh * kw * c)
        return cols, ho, wo

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols, ho, wo = self._patches(x)
        out = F.linear(cols, self.weight, self.bias)
        return out.view(x.shape[0], ho, wo, self.out_channels).permute(0, 3, 1, 2)


def conv_lowering_unfit(conv: nn.Conv2d) -> str | None:
    """Why a Conv2d cannot become a single GEMM here, or None."""
    if conv.groups != 1:
        return f"grouped convolution (groups={conv.groups})"
    if isinstance(conv.padding, str):
        return f"padding='{conv.padding}' (only explicit padding is lowered)"
    if conv.padding_mode != "zeros":
        return f"padding_mode='{conv.padding_mode}'"
    return None


def lower_conv(conv: nn.Conv2d, to_sparse: Callable | None = None) -> SparseConvAsGemm:
    """The GEMM form of a conv; `to_sparse` converts its weight matrix (None keeps it dense)."""
    return SparseConvAsGemm(conv, to_sparse)


def _sparse_linear(linear: nn.Linear, to_sparse: Callable | None) -> nn.Linear:
    new = copy.deepcopy(linear)
    weight = linear.weight.detach().contiguous()
    new.weight = nn.Parameter(to_sparse(weight) if to_sparse else weight, requires_grad=False)
    return new


# ---------------------------------------------------------------------------------------
# A sparse copy of a model


def _cuda_layer_ms(fn: Callable, iterations: int = 20, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iterations


def _cpu_layer_ms(fn: Callable, iterations: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    began = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - began) * 1000 / iterations


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


@torch.no_grad()
def build_sparse_model(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    policy: str = "auto",
    to_sparse: Callable | None = semi_structured,
) -> tuple[nn.Module, list[dict]]:
    """A copy of `model` whose 2:4 conv/linear layers compute through `to_sparse` weights.

    `model` is the masked model already in the dtype, device and memory format to run.
    policy "all" swaps every eligible layer; "auto" swaps a layer only where its sparse form
    was faster than the dense layer on that layer's real input (timed on `example_input`'s
    device), since unfold-lowered 3x3 convs can lose to cuDNN. Returns the copy and one
    entry per conv/linear layer: {"layer", "sparse": bool, "reason", "dense_ms", "sparse_ms"}.
    """
    if policy not in ("auto", "all"):
        raise ValueError(f"policy must be 'auto' or 'all', got {policy!r}")
    sparse_model = copy.deepcopy(model).eval()
    layers = target_layers(sparse_model)
    inputs: dict[str, torch.Tensor] = {}
    if policy == "auto":

        def keep_input(name):
            def hook(_module, args, _output):
                inputs.setdefault(name, args[0])  # returns None: a hook's return value replaces the output

            return hook

        hooks = [module.register_forward_hook(keep_input(name)) for name, module in layers]
        sparse_model(example_input)
        for hook in hooks:
            hook.remove()
    timer = _cuda_layer_ms if example_input.device.type == "cuda" else _cpu_layer_ms
    entries = []
    for name, module in layers:
        entry = {"layer": name, "sparse": False, "reason": None, "dense_ms": None, "sparse_ms": None}
        entries.append(entry)
        matrix = gemm_view(module.weight.detach())
        if isinstance(module, nn.Conv2d) and conv_lowering_unfit(module):
            entry["reason"] = f"not lowered: {conv_lowering_unfit(module)}"
            continue
        if not is_two_four(matrix):
            entry["reason"] = "weight is not 2:4 along the GEMM rows"
            continue
        try:
            new = lower_conv(module, to_sparse) if isinstance(module, nn.Conv2d) else _sparse_linear(module, to_sparse)
        except (RuntimeError, ValueError) as error:
            entry["reason"] = f"sparse format refused this shape {tuple(matrix.shape)}: {error}".strip()
            continue
        if policy == "auto":
            x = inputs.get(name)
            if x is None:
                entry["reason"] = "layer did not run on the example input"
                continue
            try:
                entry["dense_ms"] = timer(lambda: module(x))
                entry["sparse_ms"] = timer(lambda: new(x))
            except RuntimeError as error:
                entry["reason"] = f"sparse kernel failed on this layer's input: {str(error).strip().splitlines()[0]}"
                continue
            if entry["sparse_ms"] >= entry["dense_ms"]:
                entry["reason"] = "dense kernel was faster for this layer at this batch size"
                continue
        _set_module(sparse_model, name, new)
        entry["sparse"] = True
    return sparse_model, entries


# ---------------------------------------------------------------------------------------
# Compressed sizes (bytes)


def nm_compressed_bytes(numel: int, n: int, m: int, value_bytes: int) -> int:
    """Bytes of an N:M matrix: the n/m kept values plus ceil(log2 m) index bits per kept value.

    For 2:4 that is half the values plus 2 bits each, the metadata sparse tensor cores read.
    """
    if numel % m:
        raise ValueError(f"{numel} entries do not split into groups of m={m}")
    kept = numel // m * n
    return kept * value_bytes + math.ceil(kept * math.ceil(math.log2(m)) / 8)


def bsr_compressed_bytes(
    nonzero_blocks: int, block_rows: int, block_shape, value_bytes: int, index_bytes: int = 4
) -> int:
    """Bytes of a BSR matrix: nonzero blocks' values, one column index per block, row pointers.

    `block_rows` is the number of block rows (matrix rows / block height); BSR keeps
    block_rows + 1 row pointers.
    """
    br, bc = block_shape
    return nonzero_blocks * (br * bc * value_bytes + index_bytes) + (block_rows + 1) * index_bytes


def weight_storage(model: nn.Module, plan: SparsityPlan | None, value_bytes: int = 4) -> dict:
    """Dense and compressed weight bytes of a model; layers outside the plan count dense.

    Covers parameters only (not buffers such as BatchNorm running statistics).
    """
    method = plan.method if plan else None
    layer_names = {f"{name}.weight" if name else "weight": module for name, module in target_layers(model)}
    dense = compressed = 0
    layers = []
    for name, param in model.named_parameters():
        dense_bytes = param.numel() * value_bytes
        dense += dense_bytes
        if plan is None or name not in plan.masks or name not in layer_names:
            compressed += dense_bytes
            continue
        matrix = gemm_view(param.detach())
        if method["kind"] == "n_m":
            size = nm_compressed_bytes(matrix.numel(), method["n"], method["m"], value_bytes)
            fmt = f"{method['n']}:{method['m']} values + {math.ceil(math.log2(method['m']))}-bit indices"
        else:
            shape = method["shape"]
            nonzero = int((block_norms(matrix, shape) > 0).sum())
            size = bsr_compressed_bytes(nonzero, matrix.shape[0] // shape[0], shape, value_bytes)
            fmt = f"BSR {shape[0]}x{shape[1]}: {nonzero} nonzero blocks"
        compressed += size
        layers.append({"param": name, "dense_bytes": dense_bytes, "compressed_bytes": size, "format": fmt})
    return {"dense_bytes": dense, "compressed_bytes": compressed, "layers": layers}
