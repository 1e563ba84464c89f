"""Sparsity masks for convolution and linear weights: N:M (e.g. 2:4) and whole blocks.

Every weight is seen as the matrix of the GEMM that computes it,
``W = weight.permute(0, 2, 3, 1).reshape(out, kh * kw * in)`` (a linear weight is already
that matrix). A row of W runs over (kh, kw, in) with the input channels fastest, which is
the layout sparse tensor cores read (channels-last im2col), so "m consecutive entries of a
row" are m consecutive input channels at one kernel position. Masks are built on W and
mapped back to the weight's own shape.

A block method with random select draws its blocks from a stream seeded by both the method's
`seed` and the task's seed (block_generator); N:M and magnitude select depend on the weights only.
`skip` takes layer names and the aliases first, last and shortcuts (ResNet projection convs).

    plan = apply_sparsity(model, {"kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]}, seed=task_seed)
    ... optimizer.step(); plan.enforce(model) ...
    plan.report(model)["sparsity"]
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from . import ranges
from .protocol import InvalidTask

METHOD_KINDS = ("n_m", "block")
BLOCK_SELECT = tuple(ranges.METHODS["block"]["select"]["values"])
SKIP_ALIASES = tuple(ranges.METHODS["skip_aliases"])

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
        raise InvalidTask(
            f"{where}: key 'skip' must be a list of layer names or the aliases {', '.join(SKIP_ALIASES)}, got {skip!r}."
        )
    if kind == "n_m":
        _validate_n_m(method, where)
    else:
        _validate_block(method, where)


def _key(method: dict, where: str, key: str, rng: dict, what: str = ""):
    """The method's value for `key`, or InvalidTask naming the key and its range."""
    value = method[key]
    if not ranges.accepts(rng, value):
        raise InvalidTask(f"{where}: key '{key}' must be {ranges.phrase(rng)}{what}, got {value!r}.")
    return value


def _validate_n_m(method: dict, where: str) -> None:
    for key in ("n", "m"):
        if key not in method:
            raise InvalidTask(f"{where}: key '{key}' is missing; an n_m method needs n and m, e.g. n: 2, m: 4.")
    table = ranges.METHODS["n_m"]
    m = _key(method, where, "m", table["m"], " (the group size)")
    n = _key(method, where, "n", table["n"], " (weights kept per group of m)")
    if not n < m:
        raise InvalidTask(f"{where}: key 'n' must be less than m = {m} (weights kept per group of m), got {n!r}.")


def _validate_block(method: dict, where: str) -> None:
    table = ranges.METHODS["block"]
    if "shape" not in method:
        raise InvalidTask(f"{where}: key 'shape' is missing; give the block size [rows, cols], e.g. [4, 4].")
    _key(method, where, "shape", table["shape"], " ([rows, cols])")
    if "select" in method:
        _key(method, where, "select", table["select"])
    if "probability" not in method:
        raise InvalidTask(f"{where}: key 'probability' is missing; give the fraction of blocks to zero, e.g. 0.5.")
    p = _key(method, where, "probability", table["probability"], " (the fraction of blocks zeroed)")
    if "probability_start" in method:
        start = _key(method, where, "probability_start", table["probability_start"])
        if start > p:
            raise InvalidTask(
                f"{where}: key 'probability_start' must be at most probability ({p}), got {start!r}; "
                "a ramp only ever zeroes more blocks."
            )
    if "seed" in method:
        _key(method, where, "seed", table["seed"])


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


SHORTCUT_REASON = "skipped by the method: residual shortcut (the study recommends preserving skip connections)"


def shortcut_convs(model: nn.Module) -> list[str]:
    """Names of the convolutions on residual shortcuts: those inside the `downsample` branch of a
    torchvision ResNet block (the 1x1 projection convs). Identity shortcuts (MobileNet-V2,
    EfficientNet-B0) and DenseNet's concatenations have no weights, so other models give []."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    names = []
    for block_name, block in model.named_modules():
        if isinstance(block, (BasicBlock, Bottleneck)) and block.downsample is not None:
            prefix = f"{block_name}.downsample" if block_name else "downsample"
            names += [
                f"{prefix}.{n}" if n else prefix
                for n, m in block.downsample.named_modules()
                if isinstance(m, nn.Conv2d)
            ]
    return names


def _resolve_skip(model: nn.Module, layers, skip: list[str], where: str) -> dict[str, str]:
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
        elif entry == "shortcuts":
            out.update(dict.fromkeys(shortcut_convs(model), SHORTCUT_REASON))
        elif entry in names:
            out[entry] = "skipped by the method: named in 'skip'"
        else:
            examples = ", ".join(names[:3])
            raise InvalidTask(
                f"{where}: key 'skip' names '{entry}', which is not a convolution or linear layer "
                f"of this model; use {', '.join(repr(a) for a in SKIP_ALIASES)} or a module name such as {examples}."
            )
    return out


def check_skip(model: nn.Module, method: dict) -> None:
    """InvalidTask when the method's `skip` names a layer the model does not have (the model may
    live on the meta device: only its module names are read)."""
    _resolve_skip(model, target_layers(model), method.get("skip", []), _where(method))


def block_generator(method_seed: int, task_seed: int) -> np.random.Generator:
    """The random stream of a block method's random select: numpy's SeedSequence mixes the
    method's seed and the task's seed (both 0 .. 2**31-1) into a 128-bit PCG64 state, so every
    pair gets its own masks. (torch's CPU generator keeps only 32 bits of its seed, too few to
    hold both seeds without collisions.)"""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([method_seed, task_seed])))


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
def apply_sparsity(model: nn.Module, method: dict, seed: int = 0) -> SparsityPlan:
    """Builds masks from the model's current weights and zeroes the masked weights in place.

    `seed` is the task's seed: a block method with random select draws its blocks from
    block_generator(method seed, task seed), so the same pair gives the same masks and another
    task seed other masks. N:M and magnitude select depend on the weights only, not on seeds."""
    validate_method(method)
    if not ranges.accepts(ranges.SEED, seed):
        raise InvalidTask(f"the task seed must be {ranges.phrase(ranges.SEED)}, got {seed!r}.")
    strip(model)
    layers = target_layers(model)
    skip = _resolve_skip(model, layers, method.get("skip", []), _where(method))
    kind = method["kind"]
    if kind == "n_m":
        pattern = f"{method['n']}:{method['m']}"
        fraction = None
    else:
        pattern = "block {}x{}".format(*method["shape"])
        fraction = method.get("probability_start", method["probability"])
        generator = block_generator(method.get("seed", 0), seed)
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
                scores = torch.from_numpy(generator.random(grid, dtype=np.float32))
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
