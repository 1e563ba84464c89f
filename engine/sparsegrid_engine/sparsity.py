"""Sparsity masks for convolution and linear weights: N:M (e.g. 2:4) and whole blocks.

Every weight is seen as the matrix of the GEMM that computes it,
``W = weight.permute(0, 2, 3, 1).reshape(out, kh * kw * in)`` (a linear weight is already
that matrix). A row of W runs over (kh, kw, in) with the input channels fastest, which is
the layout sparse tensor cores read (channels-last im2col), so "m consecutive entries of a
row" are m consecutive input channels at one kernel position. Masks are built on W and
mapped back to the weight's own shape.

    plan = apply_sparsity(model, {"kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]})
    ... optimizer.step(); plan.enforce(model) ...
    plan.report(model)["sparsity"]
"""

import math

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from .protocol import InvalidTask

METHOD_KINDS = ("n_m", "block")
BLOCK_SELECT = ("random", "magnitude")
SKIP_ALIASES = ("first", "last")

_COMMON_KEYS = {"name", "kind", "skip"}
_KIND_KEYS = {
    "n_m": {"n", "m"},
    "block": {"shape", "select", "probability", "probability_start", "seed"},
}


# ---------------------------------------------------------------------------------------
# The GEMM view shared with kernels.py and measure.py


def gemm_view(weight: torch.Tensor) -> torch.Tensor:
    """The (out, kh*kw*in) GEMM matrix of a conv weight (a linear weight is returned as is)."""
    if weight.dim() == 4:
        return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)
    if weight.dim() == 2:
        return weight
    raise ValueError(f"expected a 2-D or 4-D weight, got shape {tuple(weight.shape)}")


def from_gemm_view(matrix: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of gemm_view: a (out, kh*kw*in) matrix back to a weight of `shape`."""
    if len(shape) == 4:
        out, cin, kh, kw = shape
        return matrix.reshape(out, kh, kw, cin).permute(0, 3, 1, 2).contiguous()
    return matrix.reshape(shape).contiguous()


def target_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv2d and Linear modules, in module order: the layers sparsity and MAC counts cover."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _param_name(module_name: str) -> str:
    return f"{module_name}.weight" if module_name else "weight"


# ---------------------------------------------------------------------------------------
# Validation


def _where(method) -> str:
    name = method.get("name") if isinstance(method, dict) else None
    return f"sparsity method '{name}'" if name else "the sparsity method"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_method(method: dict) -> None:
    """Raises InvalidTask with a sentence naming the offending key when `method` is unusable."""
    if not isinstance(method, dict):
        raise InvalidTask(
            f"a sparsity method must be a mapping with a 'kind' key, got {type(method).__name__}; "
            "write e.g. {kind: n_m, n: 2, m: 4}."
        )
    where = _where(method)
    kind = method.get("kind")
    if kind not in METHOD_KINDS:
        raise InvalidTask(f"{where}: key 'kind' is {kind!r}; valid kinds are {', '.join(METHOD_KINDS)}.")
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in method:
        if key not in allowed:
            raise InvalidTask(
                f"{where}: unknown key '{key}' for kind '{kind}'; allowed keys are {', '.join(sorted(allowed))}."
            )
    skip = method.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(s, str) and s for s in skip):
        raise InvalidTask(f"{where}: key 'skip' must be a list of layer names or 'first'/'last', got {skip!r}.")
    if kind == "n_m":
        _validate_n_m(method, where)
    else:
        _validate_block(method, where)


def _validate_n_m(method: dict, where: str) -> None:
    for key in ("n", "m"):
        if key not in method:
            raise InvalidTask(f"{where}: key '{key}' is missing; an n_m method needs n and m, e.g. n: 2, m: 4.")
    n, m = method["n"], method["m"]
    if not _is_int(m) or m < 2:
        raise InvalidTask(f"{where}: key 'm' must be an integer of at least 2 (the group size), got {m!r}.")
    if not _is_int(n) or not 1 <= n < m:
        raise InvalidTask(
            f"{where}: key 'n' must be an integer from 1 to m-1 = {m - 1} (weights kept per group of m), got {n!r}."
        )


def _validate_block(method: dict, where: str) -> None:
    shape = method.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(s) and s >= 1 for s in shape)):
        raise InvalidTask(f"{where}: key 'shape' must be two positive integers [rows, cols], got {shape!r}.")
    select = method.get("select", "random")
    if select not in BLOCK_SELECT:
        raise InvalidTask(f"{where}: key 'select' is {select!r}; valid values are {', '.join(BLOCK_SELECT)}.")
    if "probability" not in method:
        raise InvalidTask(f"{where}: key 'probability' is missing; give the fraction of blocks to zero, e.g. 0.5.")
    p = method["probability"]
    if not _is_number(p) or not 0.0 < p < 1.0:
        raise InvalidTask(f"{where}: key 'probability' must be a number strictly between 0 and 1, got {p!r}.")
    if "probability_start" in method:
        start = method["probability_start"]
        if not _is_number(start) or not 0.0 <= start <= p:
            raise InvalidTask(
                f"{where}: key 'probability_start' must be a number from 0 to probability ({p}), got {start!r}; "
                "a ramp only ever zeroes more blocks."
            )
    seed = method.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise InvalidTask(f"{where}: key 'seed' must be a non-negative integer, got {seed!r}.")


# ---------------------------------------------------------------------------------------
# Masks


def n_m_mask(matrix: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Bool mask keeping the n largest-magnitude entries of every m consecutive ones along rows."""
    rows, cols = matrix.shape
    if cols % m:
        raise ValueError(f"row length {cols} is not divisible by m={m}")
    groups = matrix.detach().abs().reshape(rows, cols // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(n, dim=2).indices, True)
    return keep.reshape(rows, cols)


def block_norms(matrix: torch.Tensor, shape) -> torch.Tensor:
    """L1 norm of every (br, bc) tile of a matrix: shape (rows/br, cols/bc)."""
    br, bc = shape
    rows, cols = matrix.shape
    return matrix.detach().abs().reshape(rows // br, br, cols // bc, bc).sum(dim=(1, 3))


def expand_blocks(block_keep: torch.Tensor, shape) -> torch.Tensor:
    """A per-block keep mask expanded to the element mask of the matrix it tiles."""
    br, bc = shape
    r, c = block_keep.shape
    return block_keep[:, None, :, None].expand(r, br, c, bc).reshape(r * br, c * bc)


def _unfit_reason(module: nn.Module, method: dict) -> str | None:
    """Why a layer cannot take the method's pattern, or None when it can."""
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        kind = "depthwise" if module.groups == module.in_channels else "grouped"
        return f"{kind} convolution (groups={module.groups}) has no single GEMM to sparsify"
    rows, cols = gemm_view(module.weight).shape
    if method["kind"] == "n_m":
        m = method["m"]
        if cols % m:
            return f"GEMM row length {cols} (in*kh*kw) is not divisible by m={m}"
    else:
        br, bc = method["shape"]
        if rows % br or cols % bc:
            return f"GEMM matrix {rows}x{cols} cannot be tiled by {br}x{bc} blocks"
    return None


def _resolve_skip(layers, skip: list[str], where: str) -> dict[str, str]:
    """Module name -> reason, for the layers the method's `skip` names."""
    names = [n for n, _ in layers]
    convs = [n for n, m in layers if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in layers if isinstance(m, nn.Linear)]
    out = {}
    for entry in skip:
        if entry == "first":
            target = (convs or names or [None])[0]
            if target is not None:
                out[target] = "skipped by the method: first layer (the input convolution)"
        elif entry == "last":
            target = (linears or names or [None])[-1]
            if target is not None:
                out[target] = "skipped by the method: last layer (the classifier)"
        elif entry in names:
            out[entry] = "skipped by the method: named in 'skip'"
        else:
            examples = ", ".join(names[:3])
            raise InvalidTask(
                f"{where}: key 'skip' names '{entry}', which is not a convolution or linear layer "
                f"of this model; use 'first', 'last' or a module name such as {examples}."
            )
    return out


class SparsityPlan:
    """The masks applied to a model, and how to keep, ramp and report them."""

    def __init__(self, method: dict, masks, skipped, patterns, block_state=None, fraction=None):
        self.method = method
        self.masks: dict[str, torch.Tensor] = masks
        self.skipped: list[dict] = skipped
        self.patterns: dict[str, str] = patterns  # param name -> "2:4" | "block 4x4"
        self._block_state = block_state or {}  # param name -> per-block random scores (random select)
        self.fraction = fraction  # current block fraction zeroed (block kind), else None

    def _param(self, model: nn.Module, name: str) -> torch.Tensor:
        param = model.get_parameter(name)
        mask = self.masks[name]
        if mask.device != param.device:
            self.masks[name] = mask = mask.to(param.device)
        return param

    @torch.no_grad()
    def enforce(self, model: nn.Module) -> None:
        """Zeroes every masked weight again; call after each optimizer step."""
        for name in self.masks:
            param = self._param(model, name)
            param.mul_(self.masks[name])

    @torch.no_grad()
    def update(self, model: nn.Module, progress: float) -> None:
        """Moves a block ramp to `progress` in [0, 1] (zeroing more blocks) and enforces the masks."""
        if not (_is_number(progress) and 0.0 <= progress <= 1.0):
            raise ValueError(f"progress must be a number in [0, 1], got {progress!r}")
        start = self.method.get("probability_start")
        if self.method["kind"] == "block" and start is not None:
            target = start + (self.method["probability"] - start) * progress
            if target > self.fraction:
                for name in self.masks:
                    self._zero_more_blocks(model, name, target)
                self.fraction = target
        self.enforce(model)

    def _zero_more_blocks(self, model: nn.Module, name: str, fraction: float) -> None:
        shape = self.method["shape"]
        param = self._param(model, name)
        keep = self.masks[name]
        block_keep = block_norms(gemm_view(keep.float()), shape) > 0
        if self.method.get("select", "random") == "random":
            # Fixed per-block scores make the ramp monotone: a block zeroed at fraction f
            # stays zeroed at every larger f, and each block is zeroed with probability f.
            new_keep = block_keep & (self._block_state[name].to(keep.device) >= fraction)
        else:
            norms = block_norms(gemm_view(param), shape).flatten()
            target_zero = round(fraction * norms.numel())
            extra = target_zero - int((~block_keep).sum())
            new_keep = block_keep.clone()
            if extra > 0:
                norms[~block_keep.flatten()] = float("inf")
                flat = new_keep.flatten()
                flat[norms.topk(extra, largest=False).indices] = False
                new_keep = flat.reshape(block_keep.shape)
        self.masks[name] = from_gemm_view(expand_blocks(new_keep, shape), keep.shape)

    def report(self, model: nn.Module) -> dict:
        """Overall and per-layer zero fractions of the model's current weights."""
        return sparsity_report(model, self)


def sparsity_report(model: nn.Module, plan: SparsityPlan | None = None) -> dict:
    """The report of SparsityPlan.report; with plan=None every layer is reported as dense."""
    layers, total, zeros, m_total, m_zeros = [], 0, 0, 0, 0
    patterns = plan.patterns if plan else {}
    for module_name, module in target_layers(model):
        weight = module.weight.detach()
        count, zero = weight.numel(), int((weight == 0).sum())
        total += count
        zeros += zero
        pattern = patterns.get(_param_name(module_name), "dense")
        if pattern != "dense":
            m_total += count
            m_zeros += zero
        layers.append({"layer": module_name, "shape": list(weight.shape), "sparsity": zero / count, "pattern": pattern})
    return {
        "sparsity": zeros / total if total else 0.0,
        "sparsified_sparsity": m_zeros / m_total if m_total else None,
        "layers": layers,
        "skipped": list(plan.skipped) if plan else [],
    }


@torch.no_grad()
def apply_sparsity(model: nn.Module, method: dict) -> SparsityPlan:
    """Builds masks from the model's current weights and zeroes the masked weights in place."""
    validate_method(method)
    strip(model)
    layers = target_layers(model)
    skip = _resolve_skip(layers, method.get("skip", []), _where(method))
    kind = method["kind"]
    if kind == "n_m":
        pattern = f"{method['n']}:{method['m']}"
        fraction = None
    else:
        pattern = "block {}x{}".format(*method["shape"])
        fraction = method.get("probability_start", method["probability"])
        generator = torch.Generator().manual_seed(method.get("seed", 0))
    masks, skipped, patterns, block_state = {}, [], {}, {}
    for module_name, module in layers:
        reason = skip.get(module_name) or _unfit_reason(module, method)
        if reason:
            skipped.append({"layer": module_name, "reason": reason})
            continue
        name = _param_name(module_name)
        weight = module.weight
        matrix = gemm_view(weight)
        if kind == "n_m":
            keep = n_m_mask(matrix, method["n"], method["m"])
        else:
            shape = method["shape"]
            rows, cols = matrix.shape
            grid = (rows // shape[0], cols // shape[1])
            if method.get("select", "random") == "random":
                scores = torch.rand(grid, generator=generator)
                block_state[name] = scores
                block_keep = scores >= fraction
            else:
                norms = block_norms(matrix, shape).flatten().cpu()
                block_keep = torch.ones(norms.numel(), dtype=torch.bool)
                block_keep[norms.topk(round(fraction * norms.numel()), largest=False).indices] = False
                block_keep = block_keep.reshape(grid)
            keep = expand_blocks(block_keep.to(weight.device), shape)
        masks[name] = from_gemm_view(keep, weight.shape).to(weight.device)
        patterns[name] = pattern
    plan = SparsityPlan(method, masks, skipped, patterns, block_state, fraction)
    plan.enforce(model)
    return plan


def strip(model: nn.Module) -> None:
    """Removes torch.nn.utils.prune / parametrize reparametrisations, leaving plain weights."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
        if parametrize.is_parametrized(module):
            for tensor_name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
