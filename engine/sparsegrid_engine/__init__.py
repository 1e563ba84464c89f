"""sparsegrid's PyTorch engine: dense CIFAR-10 training, 2:4 and block sparsity, honest measurements.

Run from source: ``PYTHONPATH=engine python -m sparsegrid_engine run --task T.json --workdir D``.
The contract with the worker is engine/CONTRACT.md.
"""

__version__ = "0.1.0"
