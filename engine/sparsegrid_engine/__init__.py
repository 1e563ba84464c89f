"""sparsegrid's PyTorch engine: dense CIFAR-10 training, 2:4 and block sparsity, honest measurements.

Installed (``pip install engine/`` or its wheel): ``sparsegrid-engine run --task T.json --workdir D``.
From source: ``PYTHONPATH=engine python -m sparsegrid_engine run --task T.json --workdir D``.
The contract with the worker is engine/CONTRACT.md.
"""

# The CLI's version (Sources/sparsegrid/Version.swift); tests/test_packaging.py checks that they agree.
__version__ = "0.5.0"
