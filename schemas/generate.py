"""Regenerate ``events_pb2.py`` (and its ``.pyi`` stub) from ``events.proto``.

Usage: ``python -m schemas.generate [OUT_DIR]`` (default: this folder).

Needs the dev dependency ``grpcio-tools`` (its bundled ``protoc``). The
generated files are committed; ``tests/test_schemas_generated.py`` checks that
regenerating gives the same bytes, so the .proto and the module never drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "events.proto"


def generate(out_dir: Path = HERE) -> list[Path]:
    """Run protoc on ``events.proto`` writing into ``out_dir``.

    Returns the generated file paths. Raises ``RuntimeError`` if protoc fails
    and ``ImportError`` if grpcio-tools is not installed.
    """
    from grpc_tools import protoc  # dev dependency
    import grpc_tools

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(
        [
            "protoc",
            f"-I{HERE}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(PROTO),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code} on {PROTO}")
    return [out_dir / "events_pb2.py", out_dir / "events_pb2.pyi"]


if __name__ == "__main__":  # pragma: no cover - thin wrapper
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for path in generate(target):
        print(path)
