"""The web page in real Chromium: runs tests/browser/page.test.mjs (node's test
runner + playwright-core driving Debian's /usr/bin/chromium) against a real
`scribed serve` with the micro model on a free port and a temporary data dir.

The node test uploads a file and checks the transcript and segment times,
downloads txt/srt/vtt/json, records through Chromium's fake microphone (a
sub-test that reports "skipped" while /v1/realtime answers 404), checks the
API-key field, the Record button disabled on a server without a model, keyboard reach, the layout at 1280/390/360 px with screenshots
(tests/browser/screenshots/), and that no request leaves localhost;
resampler.test.mjs checks the recorder worklet's 16 kHz resampling in node.
Needs: chromium (in .ci/packages-test.txt), node >= 20, and npm for the first
`npm ci --prefix tests/browser` (playwright-core from package-lock.json).
"""
import os
import re
import shutil
import subprocess
import warnings

import pytest

from conftest import REPO, micro_model, shared_dir

BROWSER_DIR = os.path.join(REPO, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def ensure_node_modules():
    if os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed once to install playwright-core (npm ci --prefix tests/browser)"
    r = subprocess.run([npm, "ci", "--prefix", BROWSER_DIR, "--no-audit", "--no-fund"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"npm ci --prefix tests/browser failed:\n{r.stdout}\n{r.stderr}"


def test_web_page_in_chromium(make_server):
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: install Debian's chromium package (listed in .ci/packages-test.txt)")
    node = shutil.which("node")
    assert node, "node (>= 20) is needed for the browser test"
    ensure_node_modules()

    server = make_server()
    no_model = make_server(model="")  # the Record button must be disabled there
    env = dict(os.environ)
    env.update({
        "SCRIBED_URL": server.base,
        "SCRIBED_URL_NOMODEL": no_model.base,
        "SCRIBED_SHARED": shared_dir(),
        "CHROMIUM": CHROMIUM,
        "SCREENSHOT_DIR": env.get("SCREENSHOT_DIR", os.path.join(BROWSER_DIR, "screenshots")),
    })
    r = subprocess.run([node, "--test", "--test-reporter=tap", "page.test.mjs", "resampler.test.mjs"],
                       cwd=BROWSER_DIR,
                       env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, f"browser test failed (rc {r.returncode}):\n{out[-8000:]}"
    passed = re.search(r"^# pass (\d+)", out, re.M)
    assert passed and int(passed.group(1)) >= 13, f"too few browser sub-tests passed:\n{out[-4000:]}"
    for reason in re.findall(r"^ok \d+ - (.*?) # SKIP (.*)$", out, re.M):
        warnings.warn(f"browser sub-test skipped: {reason[0]} ({reason[1]})")
