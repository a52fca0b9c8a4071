"""Look at the course as a learner sees it: run the solution notebooks, open each in a real JupyterLab in
headless Chromium, and save a screenshot of its header cell and of every picture it draws.

    python tools/render_notebooks.py OUT [NAME ...]      # NAME: 05_transformer.ipynb ...; default: all

Needs Playwright and a Chromium (Debian: `apt-get install chromium`, then `pip install playwright`; no browser
download is needed). Writes, under OUT: `executed/` (the notebooks with their outputs), `NN_x__header.png`,
`NN_x__imgK.png`, `sheet_NN_x.png` (every picture of a notebook, one under the other) and `report.json` (per
notebook: cells, pictures, pictures that failed to load, error outputs). A developer's tool, not run by the tests.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def execute(names: list[str], folder: Path) -> None:
    """Run each solution notebook top to bottom (as the grader does) and keep its outputs in ``folder``."""
    import nbformat
    from nbclient import NotebookClient

    for name in names:
        start = time.perf_counter()
        nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "solutions")}}).execute()
        nbformat.write(nb, folder / name)
        print(f"ran {name} in {time.perf_counter() - start:.0f} s", flush=True)


def lab_settings(folder: Path) -> Path:
    """JupyterLab settings for screenshots: every cell rendered (no windowing), no news pop-up over the page."""
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        package, name = plugin.split("/")
        path = folder / "@jupyterlab" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(names: list[str], executed: Path, out: Path, settings: Path) -> dict:
    from playwright.sync_api import sync_playwright

    browser_path = next((p for p in CHROMIUM if Path(p).exists()), None)
    port = free_port()
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
                            "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={executed}",
                            f"--LabApp.user_settings_dir={settings}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = {}
    try:
        time.sleep(8)  # the server's start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for i, name in enumerate(names):  # a fresh workspace each: one notebook open at a time
                page.goto(f"http://127.0.0.1:{port}/lab/workspaces/r{i}/tree/{name}?reset")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
                time.sleep(4)  # outputs and MathJax settle
                stem = name.removesuffix(".ipynb")
                page.locator(".jp-Notebook .jp-Cell").nth(0).screenshot(path=str(out / f"{stem}__header.png"))
                images = page.locator(".jp-OutputArea-output img")
                broken = 0
                for k in range(images.count()):
                    img = images.nth(k)
                    broken += not img.evaluate("e => e.complete && e.naturalWidth > 0")
                    img.screenshot(path=str(out / f"{stem}__img{k:02d}.png"), timeout=15_000)
                report[name] = dict(
                    cells=page.locator(".jp-Notebook .jp-Cell").count(), pictures=images.count(), broken=broken,
                    errors=page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count())
                print(name, report[name], flush=True)
            browser.close()
    finally:
        lab.terminate()
    return report


def contact_sheet(out: Path, stem: str, width: int = 1400) -> None:
    from PIL import Image

    pictures = [Image.open(p) for p in sorted(out.glob(f"{stem}__img*.png"))]
    if not pictures:
        return
    pictures = [im.resize((int(im.width * min(1, width / im.width)), int(im.height * min(1, width / im.width))))
                for im in pictures]
    sheet = Image.new("RGB", (width, sum(im.height + 10 for im in pictures)), "white")
    y = 0
    for im in pictures:
        sheet.paste(im, (0, y))
        y += im.height + 10
    sheet.save(out / f"sheet_{stem}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a folder for the executed notebooks and the screenshots")
    parser.add_argument("names", nargs="*", help="solution notebooks to render (file names); default: all")
    args = parser.parse_args()
    names = args.names or sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    missing = [n for n in names if not (ROOT / "solutions" / n).is_file()]
    if missing:
        parser.error(f"no such solution notebook: {', '.join(missing)}")
    executed = args.out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    execute(names, executed)
    settings = lab_settings(Path(tempfile.mkdtemp(prefix="lab-settings-")))
    try:
        report = screenshot(names, executed, args.out, settings)
    finally:
        shutil.rmtree(settings, ignore_errors=True)
    for name in names:
        contact_sheet(args.out, name.removesuffix(".ipynb"))
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"{sum(r['pictures'] for r in report.values())} pictures from {len(report)} notebooks, "
          f"{sum(r['broken'] for r in report.values())} failed to load; see {args.out}")


if __name__ == "__main__":
    main()
