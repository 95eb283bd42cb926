"""Open a Snakemake HTML report in headless Chromium: check it renders, take a screenshot.

    python bench/report_screenshot.py results/report.html docs/report_screenshot.png \
        [--open results/tables/translation.html] [--size 1400,900]

The report is a self-contained React page; it is loaded from a file:// URL with the network
disabled. `--open` shows one result (a table or plot, by the end of its path) instead of the
start page: a copy of the report gets a small script that calls the report app's own `setView`
as a click on that result would. The rendered DOM is checked for the report's menu. Needs
Debian's `chromium` (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)

OPEN_RESULT = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const want = %s;
  const key = Object.keys(results).find(p => p.endsWith(want));
  if (!key) { document.title = "result not found: " + want; return; }
  let category, subcategory;
  for (const [c, subs] of Object.entries(categories))
    for (const [s, files] of Object.entries(subs))
      if (files.includes(key)) { category = c; subcategory = s; }
  const kind = results[key].mime_type.startsWith("image/") ? "img" : "html";
  app.setView({navbarMode: "subcategory", category: category, subcategory: subcategory,
               content: kind, contentPath: results[key].data_uri, resultPath: key});
}, 300));
</script>
"""


def chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], profile: str, timeout: int) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (apt-get install chromium)")
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def render_dom(report: str | Path, timeout: int = 120) -> str:
    """The report's DOM after its scripts ran (headless Chromium --dump-dom)."""
    with tempfile.TemporaryDirectory() as profile:
        out = _run(["--virtual-time-budget=8000", "--dump-dom",
                    Path(report).resolve().as_uri()], profile, timeout)
    return out.stdout


def screenshot(report: str | Path, png: str | Path, open_result: str | None = None,
               size: tuple[int, int] = (1400, 900), timeout: int = 120) -> Path:
    """Write a PNG screenshot of the report (optionally showing one result)."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(report).resolve()
        if open_result:
            text = page.read_text(encoding="utf-8")
            cut = text.rfind("</body>")
            page = Path(tmp) / "report.html"
            page.write_text(text[:cut] + OPEN_RESULT % json.dumps(open_result) + text[cut:],
                            encoding="utf-8")
        profile = Path(tmp) / "profile"
        out = _run([f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=8000",
                    f"--screenshot={png}", page.as_uri()], str(profile), timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot:\n{out.stderr[-2000:]}")
    return png


def check_dom(dom: str) -> list[str]:
    """What is missing from a rendered report's DOM (empty when it rendered)."""
    want = ["Snakemake", "Workflow", "Statistics", "Tables", "Plots", "Runs", "Data"]
    return [w for w in want if w not in dom]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report")
    ap.add_argument("png")
    ap.add_argument("--open", dest="open_result", help="end of the path of a result to show")
    ap.add_argument("--size", default="1400,900", help="window width,height")
    args = ap.parse_args(argv)
    missing = check_dom(render_dom(args.report))
    if missing:
        print(f"report did not render: missing {missing}", file=sys.stderr)
        return 1
    w, h = (int(x) for x in args.size.split(","))
    print(screenshot(args.report, args.png, args.open_result, (w, h)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
