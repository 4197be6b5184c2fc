import threading
import time

from deephash.collection._rwlock import ReadWriteLock


def test_readers_share_writers_exclude() -> None:
    lock = ReadWriteLock()
    inside = {"readers": 0, "writers": 0, "max_readers": 0, "bad": 0}
    guard = threading.Lock()

    def reader() -> None:
        for _ in range(50):
            with lock.read():
                with guard:
                    inside["readers"] += 1
                    inside["max_readers"] = max(inside["max_readers"], inside["readers"])
                    inside["bad"] += inside["writers"] != 0
                time.sleep(0.0005)
                with guard:
                    inside["readers"] -= 1

    def writer() -> None:
        for _ in range(20):
            with lock.write():
                with guard:
                    inside["writers"] += 1
                    inside["bad"] += inside["writers"] != 1 or inside["readers"] != 0
                time.sleep(0.0005)
                with guard:
                    inside["writers"] -= 1

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside["bad"] == 0
    assert inside["max_readers"] > 1  # readers did run together
