"""DRG grouping: kernels, batch preparation, explanation."""

from ._group import GroupRun, GroupSummary
from ._stream import GroupDatasetResult, group, group_batches, group_dataset, group_file

__all__ = [
    "GroupDatasetResult",
    "GroupRun",
    "GroupSummary",
    "group",
    "group_batches",
    "group_dataset",
    "group_file",
]
