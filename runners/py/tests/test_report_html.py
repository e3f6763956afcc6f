"""report.html: content from a campaign with failures and a previous campaign, and a render in
headless Chromium (Debian's chromium): the screenshot is not blank and the console has no error."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from runners.py import nightly
from runners.py.tests.helpers import FAKE_TDXHP, FakeTdxhpTest, answer, case_doc, failure, prop, run_json

CHROMIUM = shutil.which("chromium")


def failing(digest, n_ops, invariant="INV-ACCEPT", pid="accept-level"):
    return answer(run_json([prop(pid, "fail", failure=failure(invariant, pid, digest, case=f"cases/{digest}.json",
                                                                 step=1)),
                            prop("contig", cases=40)], scenarios={"SC-ACCEPT4K-AFTER": 3}),
                  cases={f"{digest}.json": case_doc(n_ops)})


def render(page: Path, shot: Path) -> tuple[int, str]:
    """Headless Chromium: a screenshot, and its log with console messages (--enable-logging)."""
    with tempfile.TemporaryDirectory(prefix="tdxhp-chromium-") as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                            "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()],
                           capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def console_errors(log: str) -> list[str]:
    """Console messages and failed loads the page caused (Chromium logs them as CONSOLE lines)."""
    return [ln for ln in log.splitlines() if "CONSOLE" in ln or "Failed to load resource" in ln]


def non_white_fraction(png: Path) -> tuple[float, int]:
    import matplotlib.image as mpimg
    img = mpimg.imread(str(png))[..., :3]
    flat = img.reshape(-1, 3)
    non_white = (flat < 0.95).any(axis=1).mean()
    colours = len({tuple(p) for p in (flat[:: 97] * 255).astype(int)})
    return float(non_white), colours


class ReportHtmlTest(FakeTdxhpTest):
    def setUp(self):
        super().setUp()
        os.environ.pop("TDXHP_REPORT_NO_PLOTS", None)   # this test draws the plots

    def campaign(self, *extra):
        return self.call_main(nightly.main, ["--tdxhp", str(FAKE_TDXHP), "--out", str(self.tmp / "camp"),
                                             "--seconds", "3600", "--run-seconds", "5", "--seed", "10", *extra])

    def make_two_campaigns(self):
        # The first campaign fails with aaa and bbb; the second with aaa (still) and ccc (new); bbb is gone.
        self.plan(run=[failing("aaa", 4), failing("bbb", 3, "INV-NOPROMOTE", "no-promote")])
        self.campaign("--max-runs", "2")
        self.plan(run=[answer(run_json([prop("contig", cases=50)])), failing("aaa", 3),
                       failing("ccc", 2, "INV-CONTIG", "contig")])
        code, _, err = self.campaign("--fresh", "--max-runs", "3")
        self.assertEqual(code, 1, err)
        return (self.tmp / "camp" / "report.html").read_text()

    def test_content(self):
        page = self.make_two_campaigns()
        self.assertIn("1 new, 1 still failing, 1 gone", page)
        self.assertIn("INV-NOPROMOTE/no-promote/bbb", page, "the gone failure is listed")
        self.assertIn("tdxhp replay corpus/INV-ACCEPT__accept-level__aaa.json --trace", page)
        self.assertIn("tdxhp export --c corpus/INV-ACCEPT__accept-level__aaa.json -o INV-ACCEPT__accept-level__aaa.c", page)
        self.assertIn('href="corpus/INV-ACCEPT__accept-level__aaa.json"', page)
        self.assertIn('href="runs/0002/stdout.txt"', page, "logs of the first run that saw aaa")
        self.assertIn("guest accepts gfn 0x1 at 4K ← violation", page, "shrunk steps in domain words, step 1 marked")
        self.assertIn("SC-ACCEPT4K-AFTER", page)
        self.assertIn("Unique failure signatures found over time", page, "the matplotlib plots are inlined")
        self.assertNotIn("<script", page)
        for attr in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import"):
            self.assertNotIn(attr, page, "the page loads nothing from the network")
        self.assertTrue((self.tmp / "camp" / "previous" / "failures.json").exists())

    @unittest.skipUnless(CHROMIUM, "chromium is not installed (make deps installs it)")
    def test_renders_in_headless_chromium(self):
        self.make_two_campaigns()
        shot = self.tmp / "report.png"
        code, log = render(self.tmp / "camp" / "report.html", shot)
        self.assertEqual(code, 0, log[-2000:])
        self.assertEqual(console_errors(log), [])
        non_white, colours = non_white_fraction(shot)
        self.assertGreater(non_white, 0.03, "the screenshot is blank")
        self.assertGreater(colours, 8, "the screenshot has almost no colours: plots and tables missing")
        if os.environ.get("TDXHP_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["TDXHP_KEEP_SCREENSHOT"])

    @unittest.skipUnless(CHROMIUM, "chromium is not installed (make deps installs it)")
    def test_the_render_check_sees_errors_and_blank_pages(self):
        """The checks above can fail: a page with a script error and a missing image, and a blank page."""
        bad = self.tmp / "bad.html"
        bad.write_text("<html><body><img src='missing.png'><script>undefined_fn()</script></body></html>")
        code, log = render(bad, self.tmp / "bad.png")
        self.assertTrue(console_errors(log), log[-2000:])
        self.assertLess(non_white_fraction(self.tmp / "bad.png")[0], 0.03)


class SvgAxesTest(unittest.TestCase):
    """report.svg (the Markdown report's chart): review check 8's mislabelled axes."""

    def test_failure_counts_have_whole_ticks_and_times_read_exactly(self):
        import re
        from runners.py import plot
        svg = plot.chart([dict(title="t", y_label="unique failures", series={"sim/a": [(0.25 / 60, 1)]},
                               x_max=1 / 60, step=True)])
        y_ticks = re.findall(r'text-anchor="end" font-size="10">([^<]+)<', svg)
        self.assertTrue(y_ticks and all(re.fullmatch(r"\d+", t) for t in y_ticks), y_ticks)
        x_ticks = re.findall(r'text-anchor="middle" font-size="10">([^<]+)<', svg)
        self.assertIn("0.25 min", x_ticks)
        self.assertIn("0.75 min", x_ticks)
