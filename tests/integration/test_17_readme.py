"""The README's examples, run as they are written, so they cannot rot.

Convention: a fenced block right after an HTML comment `<!-- test: MODE [any-output] -->`
(invisible on GitHub) is run here; unmarked blocks are not (downloads, deployment).
MODE is one of:
  setup     `tools/install-deps.sh [...] && make TARGET` lines: the script is run with
            --dry-run (apt-get through sudo only when not root), TARGET must exist.
  console   `$ command` lines (a trailing `\\` continues one) followed by the output the
            command prints, compared exactly unless the marker says `any-output`.
  shell     one command per line (curl against the server), each must succeed; `ID`
            in a path is the id of the last job a command printed.
  realtime  a Python program, run with a speech clip against a server with Silero VAD.
Before running, the README's names are mapped to the test's: `build/scribed` -> the
binary under test, `../shared` -> SCRIBED_SHARED, `localhost:8080` / `127.0.0.1:8080`
-> the test server, `./data` -> a temporary data dir, `talk.mp3` and
`model.f16.bin` -> files made from the micro test model's clip and the model itself
(commands run in a temporary directory holding them).
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import REPO, micro_model, scribed_bin, shared_dir

MARKER = re.compile(r"^<!-- test: (\w+)((?: [\w-]+)*) -->$")
MODES = ("setup", "console", "shell", "realtime")


def readme_blocks():
    """[(mode, options, lines, line number)] of every marked fenced block."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        i += 1
        if not m:
            continue
        assert m.group(1) in MODES, f"README.md:{i}: unknown test mode {m.group(1)!r}"
        assert i < len(lines) and lines[i].startswith("```"), \
            f"README.md:{i}: a test marker must be followed by a fenced block"
        start, i = i + 1, i + 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        blocks.append((m.group(1), m.group(2).split(), lines[start:i], start + 1))
        i += 1
    return blocks


def blocks_of(mode):
    return [b for b in readme_blocks() if b[0] == mode]


@pytest.fixture
def workdir(tmp_path):
    """The directory the examples run in: talk.mp3 and model.f16.bin are there."""
    if not os.path.exists(micro_model()):
        pytest.skip(f"no reference model at {micro_model()} (set SCRIBED_SHARED)")
    clip = os.path.join(shared_dir(), "reference", "a_short.wav")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", clip, str(tmp_path / "talk.mp3")],
                   check=True, timeout=60)
    shutil.copy(micro_model(), tmp_path / "model.f16.bin")
    return tmp_path


def localize(cmd, workdir, server=None):
    cmd = cmd.replace("build/scribed", scribed_bin()).replace("../shared", shared_dir())
    cmd = cmd.replace("./data", str(workdir / "data"))
    if server:
        for host in ("localhost:8080", "127.0.0.1:8080"):
            cmd = cmd.replace(host, f"127.0.0.1:{server.port}")
    return cmd


def test_readme_marks_every_kind_of_example():
    modes = [b[0] for b in readme_blocks()]
    for mode in MODES:
        assert mode in modes, f"README.md has no '<!-- test: {mode} -->' example"


def test_setup_commands_work_as_root_and_as_a_user():
    lines = [l for b in blocks_of("setup") for l in b[2] if l.strip()]
    assert len(lines) >= 2
    root = os.geteuid() == 0
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as f:
        makefile = f.read()
    for line in lines:
        install, make = (part.strip() for part in line.split("&&"))
        assert install.startswith("tools/install-deps.sh"), line
        assert "sudo" not in line, line
        r = subprocess.run(install + " --dry-run", shell=True, cwd=REPO, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        steps = r.stdout.strip().splitlines()
        # the test lists name arm64 libraries (check-arm64): dpkg learns that architecture first
        archs = [s for s in steps if "dpkg --add-architecture" in s]
        assert archs == ([] if "--test" not in install else archs), steps
        steps = [s for s in steps if s not in archs]
        assert [s.split("apt-get ")[1].split()[0] for s in steps] == ["update", "install"]
        for s in steps:
            assert s.startswith("env ") if root else s.startswith("sudo env "), s
        wanted = open(os.path.join(REPO, ".ci", "packages.txt")).read().split()
        if "--test" in install:
            wanted += open(os.path.join(REPO, ".ci", "packages-test.txt")).read().split()
        assert steps[1].split("-qq ", 1)[1].split() == wanted
        target = make.split()[1]
        assert make.split()[0] == "make" and re.search(rf"^{target}:", makefile, re.M), line


def parse_console(lines):
    """[(command, expected output lines)] of a console block."""
    out, cmd, expected = [], None, []
    it = iter(lines)
    for line in it:
        if line.startswith("$ "):
            if cmd is not None:
                out.append((cmd, expected))
            cmd, expected = line[2:], []
            while cmd.endswith("\\"):
                cmd = cmd[:-1] + " " + next(it).strip()
        elif cmd is not None:
            expected.append(line)
    if cmd is not None:
        out.append((cmd, expected))
    return out


def test_console_examples(workdir):
    blocks = blocks_of("console")
    assert blocks
    for mode, opts, lines, lineno in blocks:
        seen = {}  # ids the README shows -> the ones this run printed (keys)
        for cmd, expected in parse_console(lines):
            for shown, real in seen.items():
                cmd = cmd.replace(shown, real)
            r = subprocess.run(localize(cmd, workdir), shell=True, cwd=workdir,
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, (f"README.md:{lineno}", cmd, r.stderr)
            for shown in re.findall(r"\bkey_[0-9a-f]{16}\b", "\n".join(expected)):
                m = re.search(r"\bkey_[0-9a-f]{16}\b", r.stdout)
                assert m, (cmd, r.stdout)
                seen[shown] = m.group(0)
            if "any-output" not in opts:
                want = "\n".join(expected).rstrip()
                assert r.stdout.rstrip() == want, (f"README.md:{lineno}", cmd, r.stdout)


def wait_job(server, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = requests.get(server.url(f"/v1/jobs/{job_id}"), timeout=5).json()["status"]
        if status not in ("queued", "running"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_http_examples(server, workdir):
    blocks = blocks_of("shell")
    assert blocks
    job_id, outputs = None, []
    for mode, opts, lines, lineno in blocks:
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cmd = localize(line, workdir, server)
            assert cmd.startswith("curl "), line
            # curl itself exits 0 on a 4xx/5xx: make those fail, keeping the body
            cmd = "curl -sS --fail-with-body " + cmd[len("curl "):]
            if re.search(r"/jobs/ID\b", cmd):
                assert job_id, f"README.md:{lineno}: ID before any job was created"
                if "/result" in cmd:
                    assert wait_job(server, job_id) == "succeeded"
                cmd = re.sub(r"/jobs/ID\b", f"/jobs/{job_id}", cmd)
            r = subprocess.run(cmd, shell=True, cwd=workdir, capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, (line, r.stdout, r.stderr)
            outputs.append((line, r.stdout))
            m = re.search(r'"id"\s*:\s*"(job_[^"]+)"', r.stdout)
            if m:
                job_id = m.group(1)
    first = json.loads(outputs[0][1])
    assert first["task"] == "transcribe" and first["segments"], outputs[0]
    assert job_id, "the examples create a job"


def test_realtime_example(make_server, workdir):
    vad = os.path.join(shared_dir(), "models", "silero-v6.2.0.bin")
    if not os.path.exists(vad):
        pytest.skip("no Silero model in shared/models")
    (mode, opts, lines, lineno), = blocks_of("realtime")
    s = make_server(args=["--workers", "1", "--vad-model", vad])
    prog = workdir / "realtime_client.py"
    prog.write_text(localize("\n".join(lines) + "\n", workdir, s))
    clip = os.path.join(shared_dir(), "reference", "b_sentence.wav")
    r = subprocess.run(["/usr/bin/python3", str(prog), clip], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip().splitlines()
    assert out and out[-1].startswith("done:"), r.stdout
    segments = out[:-1]
    assert any(l.startswith("final ") for l in segments), r.stdout
    for l in segments:
        # "final 0.00-9.59s swore swore": the time, an s, a space, then the text
        assert re.match(r"^(partial|final) \d+\.\d\d-\d+\.\d\ds( |$)", l), l
