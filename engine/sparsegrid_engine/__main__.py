"""Command line: `run --task FILE --workdir DIR`, `serve`, `check --task FILE`, `describe`, `make-synthetic`.

    PYTHONPATH=engine python -m sparsegrid_engine run --task task.json --workdir /tmp/w
    PYTHONPATH=engine python -m sparsegrid_engine serve < control-lines
    PYTHONPATH=engine python -m sparsegrid_engine check --task task.json
    PYTHONPATH=engine python -m sparsegrid_engine describe
    PYTHONPATH=engine python -m sparsegrid_engine make-synthetic --out DIR --train 512 --test 256 --seed 0

`run` speaks engine/CONTRACT.md: JSON lines on stdout, exit 0 with one result, 2 for an
invalid task, 1 for anything else. `serve` is the long-lived mode (CONTRACT.md, "Long-lived
mode"): torch is imported once, and each stdin line `{"task": "/abs/task.json", "workdir":
"/abs/dir"}` runs that task through `run`'s own code path (sparsegrid_engine/serve.py), prints its
events and then `{"event": "end", "exit": N}` with the status `run` would have exited with; the
global state captured at start is put back between tasks; end of stdin exits 0, a malformed line
exits 1. `check` validates a task as `run` does before any work
(no data read, no weights allocated): prints `ok` and exits 0, or prints the reason on stderr
and exits 2 (1 when the file cannot be read).
"""

import argparse
import json
import sys

from .protocol import InvalidTask, claim_stdout, die_with_parent, log
from .serve import EXIT_FAILED, EXIT_INVALID, EXIT_OK, execute, run_process, serve


def _run(args) -> int:
    die_with_parent()
    claim_stdout()
    return execute(args.task, args.workdir, run_process()).status


def _serve(_args) -> int:
    die_with_parent()
    claim_stdout()
    return serve()


def _check(args) -> int:
    try:
        try:
            with open(args.task) as f:
                task = json.load(f)
        except OSError as e:
            log(f"cannot read the task file {args.task}: {e.strerror}.")
            return EXIT_FAILED
        except ValueError as e:
            raise InvalidTask(f"the task file {args.task} is not valid JSON: {e}.") from e
        from .runner import validate_task  # imports torch: after the task file is known to be readable

        validate_task(task)
    except InvalidTask as e:
        log(f"invalid task: {e}")
        return EXIT_INVALID
    sys.stdout.write("ok\n")
    return EXIT_OK


def _describe(_args) -> int:
    from .runner import describe

    sys.stdout.write(json.dumps(describe()) + "\n")
    return EXIT_OK


def _make_synthetic(args) -> int:
    from .data import make_synthetic

    try:
        out = make_synthetic(args.out, args.train, args.test, args.seed)
    except InvalidTask as e:
        log(f"error: {e}")
        return EXIT_INVALID
    log(f"wrote synthetic CIFAR-10-format data ({args.train} train, {args.test} test, seed {args.seed}) to {out}")
    return EXIT_OK


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sparsegrid_engine", description="sparsegrid's PyTorch engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one task and report it as JSON lines on stdout")
    run.add_argument("--task", required=True, help="TASK.json written by the worker")
    run.add_argument("--workdir", required=True, help="directory for the checkpoint and scratch files")
    run.set_defaults(func=_run)
    sub.add_parser(
        "serve", help="long-lived mode: run the tasks named on stdin, one line each, until end of stdin"
    ).set_defaults(func=_serve)
    check = sub.add_parser("check", help="validate a task as run would, without running it: ok (exit 0) or exit 2")
    check.add_argument("--task", required=True, help="TASK.json to check")
    check.set_defaults(func=_check)
    sub.add_parser("describe", help="print the engine's models, methods, devices and versions as JSON").set_defaults(
        func=_describe
    )
    synth = sub.add_parser("make-synthetic", help="write learnable synthetic data in the cifar-10-batches-py format")
    synth.add_argument("--out", required=True, help="folder to write (created if missing)")
    synth.add_argument("--train", type=int, required=True, help="training images")
    synth.add_argument("--test", type=int, required=True, help="test images")
    synth.add_argument("--seed", type=int, default=0, help="seed of the class patterns and the images")
    synth.set_defaults(func=_make_synthetic)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
