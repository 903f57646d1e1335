"""Running a training command on several processes: torchrun, started by the command itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

NPROC_HELP = (
    "Data-parallel processes on this machine (torchrun; gloo on CPU, NCCL on GPUs): one global "
    "batch split across them. Or launch torchrun yourself: torchrun --nproc-per-node N "
    "--no-python earmark train ..."
)


def torchrun(nproc: int, out: Path) -> int:
    """Run this command again under torchrun with ``nproc`` ranks; its exit status. A failed
    rank (torchrun's report names it) ends the run: say where it can resume from."""
    args = list(sys.argv[1:])
    at = next(i for i, a in enumerate(args) if a == "--nproc" or a.startswith("--nproc="))
    del args[at : at + (1 if "=" in args[at] else 2)]
    earmark = Path(sys.executable).with_name("earmark")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), "--no-python", str(earmark), *args]  # fmt: skip
    code = subprocess.run(cmd).returncode
    if code != 0:
        last = out / "last"
        if (last / "trainer_state.json").is_file():  # the ASR's (the NLU's is a torch file)
            step = json.loads((last / "trainer_state.json").read_text())["step"]
            where = f"its state at step {step} is in {last}"
        else:
            where = (
                f"its last saved state is in {last}" if last.is_dir() else "nothing was saved yet"
            )
        typer.echo(
            f"training stopped: a rank failed (exit status {code}; torchrun's report above "
            f"names it); {where}: run the same command with --resume to go on",
            err=True,
        )
    return code
