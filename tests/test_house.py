"""One house: outputs get the umask's mode, lower layers take objects, no module reaches into
another's private names, every output schema is declared in drgkit.schema."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pytest

from drgkit._io import atomic_output, open_writer


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_output_gets_the_umask_mode_not_0600(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
        with open_writer(tmp_path / "b.csv") as writer:
            writer.write(pa.RecordBatch.from_pydict({"case_id": ["1"]}))
        # what a plain open() makes under the same umask
        (tmp_path / "plain").write_text("x")
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "b.csv").stat().st_mode) == want
