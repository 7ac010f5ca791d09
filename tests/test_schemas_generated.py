"""The committed events_pb2.py is exactly what protoc makes of events.proto."""

from pathlib import Path

from schemas.generate import HERE, generate  # needs grpcio-tools: pip install -e '.[dev]'


def test_regenerating_gives_the_committed_files(tmp_path: Path):
    for generated in generate(tmp_path):
        committed = HERE / generated.name
        assert generated.read_bytes() == committed.read_bytes(), (
            f"{committed.name} is stale: run `python -m schemas.generate` and commit the result"
        )
