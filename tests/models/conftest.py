from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The batches here are tiny: with several threads on a shared 2-core machine, OpenMP
    # spin-waiting costs 10-30× the actual work. Restore the setting for the rest of the run.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
