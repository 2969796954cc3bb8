"""DRG grouping: kernels, batch preparation, explanation."""

from ._group import GroupRun, GroupSummary
from ._stream import group, group_batches, group_file

__all__ = ["GroupRun", "GroupSummary", "group", "group_batches", "group_file"]
