"""Screenshots of `captchalab explore` for the docs: draws a 2, then a 4 (compare mode), and drops
a noisy CAPTCHA, in headless Chromium (Debian's package) driven by Playwright.

    python docs/make_screenshots.py --model models/mnist.keras --model models/ctc-distorted.keras [--out docs]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

STROKES = {
    "2": [(70, 80), (110, 45), (170, 50), (190, 100), (150, 160), (80, 225), (210, 225)],
    "4": [(170, 230), (170, 40), (60, 170), (220, 170)],
}


def draw(page, selector, digit, scale=1.0):
    box = page.locator(selector).bounding_box()
    points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in STROKES[digit]]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=10)
    page.mouse.up()


def main():
    from playwright.sync_api import sync_playwright
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.serving import launch
    import cv2

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    server, url = launch(["explore", *[x for m in args.model for x in ("--model", m)]], "api/models")
    try:
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
            captcha = Path(tmp) / "noisy.png"
            cv2.imwrite(str(captcha), Source(spec=GenerationSpec("noisy", 1, seed=11, strength=0.8)).sample(0).image)
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.wait_for_selector("#model option", state="attached")
            draw(page, "#pad", "2")
            page.wait_for_selector("#predicted")
            page.locator("#layers .maps canvas").nth(7).hover()
            time.sleep(0.5)
            page.screenshot(path=str(Path(args.out) / "explore-draw.png"), full_page=True)
            page.click("[data-tab=compare]")
            draw(page, "#pad-a", "2", 0.7)
            draw(page, "#pad-b", "4", 0.7)
            page.wait_for_selector("#most-apart")
            time.sleep(0.5)
            page.screenshot(path=str(Path(args.out) / "explore-compare.png"), full_page=True)
            page.click("[data-tab=captcha]")
            page.set_input_files("#file", str(captcha))
            page.wait_for_selector(".reading h3")
            time.sleep(2)
            page.screenshot(path=str(Path(args.out) / "explore-captcha.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
