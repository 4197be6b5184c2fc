"""The page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven
by selenium against a live server on 127.0.0.1."""

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deephash.collection import Collection
from deephash.serve import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium is not installed: apt-get install chromium chromium-driver "
    "(`make test` does this as root)",
)


@contextlib.contextmanager
def _serve(collection_dir: Path, **options: Any) -> Iterator[str]:
    """A uvicorn server of ``create_app(collection, **options)`` on a free loopback port."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    col = Collection.open(collection_dir)
    server = uvicorn.Server(
        uvicorn.Config(create_app(col, **options), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/health", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        col.close()


@pytest.fixture()
def live_url(collection_dir: Path) -> Iterator[str]:
    with _serve(collection_dir) as url:
        yield url


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def grid(driver: Any) -> list[tuple[int, int]]:
    """(id, distance) of the result cards whose thumbnails have loaded."""
    return driver.execute_script(
        """return Array.from(document.querySelectorAll('#results .result')).map(card => {
             const img = card.querySelector('img');
             const d = card.querySelector('.distance').textContent.replace('d=', '');
             return [Number(card.dataset.id), Number(d), img.complete && img.naturalWidth > 0];
           });"""
    )


def wait_for(driver: Any, condition: Any, timeout: float = 20.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_upload_search_and_click_through(
    live_url: str, browser: Any, png_files: list[tuple[Path, str]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    query = png_files[80][0]  # not in the collection
    browser.get(live_url + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "60")
    browser.find_element(By.ID, "file-input").send_keys(str(query))

    def loaded(d: Any) -> Any:
        cards = grid(d)
        return cards if len(cards) == 12 and all(ok for _, _, ok in cards) else False

    cards = wait_for(browser, loaded)
    api = httpx.post(
        live_url + "/search?k=12", files={"image": (query.name, query.read_bytes(), "image/png")}
    ).json()
    assert [(i, d) for i, d, _ in cards] == [(h["id"], h["distance"]) for h in api["results"]]
    assert "ms" in browser.find_element(By.ID, "query-time").text
    assert browser.find_element(By.ID, "query-image").get_attribute("src").startswith("blob:")
    shot = tmp_path / "serve-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # click the farthest result: the grid becomes that item's neighbours (it first, at distance 0)
    target, target_distance, _ = cards[-1]
    assert target_distance > 0
    browser.find_elements(By.CSS_SELECTOR, "#results .result")[-1].click()
    before = [(i, d) for i, d, _ in cards]

    def clicked_grid(d: Any) -> Any:
        # the old grid may also start at distance 0: wait for the new one, not any loaded grid
        c = loaded(d)
        caption = d.find_element(By.ID, "query-caption").text
        new = c and f"item #{target}" in caption and [(i, x) for i, x, _ in c] != before
        return c if new and c[0][1] == 0 else False

    after = wait_for(browser, clicked_grid)
    by_id = httpx.post(live_url + "/search", json={"id": target, "k": 12}).json()
    assert [(i, d) for i, d, _ in after] == [(h["id"], h["distance"]) for h in by_id["results"]]
    assert target in [i for i, d, _ in after if d == 0]
    assert [(i, d) for i, d, _ in after] != [(i, d) for i, d, _ in cards]
    assert f"item #{target}" in browser.find_element(By.ID, "query-caption").text

    # the add form: two files and a label -> new ids, the collection size shown grows
    browser.find_element(By.ID, "add-files").send_keys(
        "\n".join(str(f) for f, _ in png_files[81:83])
    )
    browser.find_element(By.ID, "add-label").send_keys("added from the page")
    browser.find_element(By.CSS_SELECTOR, "#add-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "62")
    assert browser.find_element(By.ID, "add-status").text == "added 2: ids 60, 61"
    item = httpx.get(live_url + "/items/61").json()
    assert item["label"] == "added from the page" and item["path"] == png_files[82][0].name


def test_a_re_ranking_collection_shows_distance_and_score(
    rerank_collection_dir: Path, browser: Any, png_files: list[tuple[Path, str]]
) -> None:
    """Uploading a stored image finds that item first (score 1.000); every card shows the
    Hamming distance and the re-rank score, as the API returns them."""
    from selenium.webdriver.common.by import By

    query, _ = png_files[17]  # stored as id 17
    with _serve(rerank_collection_dir) as url:
        browser.get(url + "/")
        wait_for(
            browser, lambda d: "re-ranked by early-stages" in d.find_element(By.ID, "ranking").text
        )
        browser.find_element(By.ID, "file-input").send_keys(str(query))

        def loaded(d: Any) -> Any:
            cards = grid(d)
            return cards if len(cards) == 12 and all(ok for _, _, ok in cards) else False

        cards = wait_for(browser, loaded)
        scores = browser.execute_script(
            "return Array.from(document.querySelectorAll('#results .result .score'))"
            ".map(s => s.textContent);"
        )
        api = httpx.post(
            url + "/search?k=12", files={"image": (query.name, query.read_bytes(), "image/png")}
        ).json()["results"]
    assert [(i, d) for i, d, _ in cards] == [(h["id"], h["distance"]) for h in api]
    assert scores == [f"s={h['score']:.3f}" for h in api]
    assert cards[0][0] == 17 and scores[0] == "s=1.000"
    assert [h["score"] for h in api] == sorted((h["score"] for h in api), reverse=True)


def test_the_page_asks_for_the_write_token_and_keeps_it_in_the_tab(
    collection_dir: Path, browser: Any, png_files: list[tuple[Path, str]]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    token = "page-token-123"
    with _serve(collection_dir, write_token=token) as url:
        browser.get(url + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "60")

        def add(i: int) -> None:
            browser.find_element(By.ID, "add-files").send_keys(str(png_files[i][0]))
            browser.find_element(By.CSS_SELECTOR, "#add-form button").click()

        # a wrong token: the server refuses, the page says why, nothing is added
        add(81)
        wait_for(browser, expected_conditions.alert_is_present()).send_keys("wrong")
        browser.switch_to.alert.accept()
        wait_for(browser, lambda d: "write token" in d.find_element(By.ID, "add-status").text)
        assert httpx.get(url + "/health").json()["count"] == 60
        browser.execute_script("document.getElementById('add-form').reset()")  # choose again
        # the right one: added, and kept in this tab's session storage for the next addition
        add(81)
        wait_for(browser, expected_conditions.alert_is_present()).send_keys(token)
        browser.switch_to.alert.accept()
        wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "61")
        assert browser.execute_script("return sessionStorage.getItem('deephash-token')") == token
        assert browser.execute_script("return localStorage.length") == 0
        add(82)  # no prompt this time
        wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "62")


def test_the_page_with_a_read_token_asks_once_and_shows_the_images(
    collection_dir: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    with _serve(collection_dir, read_token="reader") as url:
        browser.get(url + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "count").text == "60")  # /stats is open
        browser.find_element(By.ID, "random-button").click()
        wait_for(browser, expected_conditions.alert_is_present()).send_keys("reader")
        browser.switch_to.alert.accept()
        cards = wait_for(
            browser, lambda d: (g := grid(d)) and all(ok for _, _, ok in g) and len(g) == 12 and g
        )
        assert len(cards) == 12
        loaded = browser.execute_script(
            "const q = document.getElementById('query-image'); return q.complete && q.naturalWidth"
        )
        assert loaded > 0


def test_an_instance_collection_names_how_it_ranks(
    tmp_path: Path, tiny_instance_run: Path, browser: Any, png_files: list[tuple[Path, str]]
) -> None:
    from selenium.webdriver.common.by import By

    from deephash.collection import Collection

    with Collection.create(tmp_path / "c", tiny_instance_run, rerank="instance") as col:
        col.add_images([f.read_bytes() for f, _ in png_files[:3]])
    want = "ranked by instance bits (32 nearest codes + 32 nearest descriptors)"
    with _serve(tmp_path / "c") as url:
        browser.get(url + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "ranking").text == want)
