import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deephash.collection.lock import CollectionLockedError, FolderLock


def test_second_holder_is_refused_with_the_pid(tmp_path: Path) -> None:
    first = FolderLock(tmp_path / "lock")
    first.acquire()
    with pytest.raises(CollectionLockedError, match=f"process {os.getpid()}"):
        FolderLock(tmp_path / "lock").acquire()
    first.release()
    with FolderLock(tmp_path / "lock") as again:  # released: free again
        assert again.held


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from deephash.collection.lock import FolderLock\n"
        f"FolderLock({str(tmp_path / 'lock')!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        with pytest.raises(CollectionLockedError, match=f"process {proc.pid}"):
            FolderLock(tmp_path / "lock").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / "lock").read_text().startswith(str(proc.pid))  # the stale file stays ...
    with FolderLock(tmp_path / "lock"):  # ... and does not block
        assert (tmp_path / "lock").read_text().startswith(str(os.getpid()))
