"""The documentation: the site builds with `mkdocs build --strict`, the API reference names every
module, and every ```python and ```bash snippet of README.md and docs/**/*.md runs as written.

A page's snippets run in order, as a reader would run them: in one fresh working folder, the
Python ones in one namespace, so a later block may use what an earlier one made (a model
directory, a file). `python -m tf_gru4rec.X ...` lines run in this process, through the same
`runpy` entry a shell's `python -m` takes, so TensorFlow is imported once for all of them
(except a `... &` line, a background process, and one that splits the CPU into devices);
`../shared/data` is the shared data beside the checkout, and a page that reads it is skipped
when it is absent; the serving port 8500 becomes a free one, so a server already running here
is neither disturbed nor mistaken for the page's. A block right after `<!-- snippet: skip (reason) -->` is not run; `SKIPPED`
lists them all.
"""

from __future__ import annotations

import ast
import os
import re
import runpy
import shlex
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
PACKAGE_FOLDERS = sorted(p.parent.name for p in (REPO / "tf_gru4rec").glob("*/__init__.py"))

SKIP_MARK = re.compile(r"^<!-- snippet: skip \((.+)\) -->$")
#: Every block not run, by page: a new one must be added here on purpose.
SKIPPED = {"docs/guides/distributed.md": 1}

#: Shell lines not run, by how they start, and why.
NOT_RUN = {
    "python -m pytest": "the test suite itself (this file is part of it)",
    "docker run": "needs Docker and the tensorflow/serving image",
    "export/run_tf_serving.sh": "docker run of TF Serving (as above)",
    "tensorboard --logdir": "a server that runs until stopped",
}
#: `python -m` lines that another test runs and checks, so running them again here would only cost time.
RUN_ELSEWHERE = {
    "python -m tf_gru4rec.train": "tests/test_cli.py::test_demo_prints_the_readme_table_quietly",
}
#: Other shell lines, run by bash: only these cheap commands that write inside the working folder.
SHELL_COMMANDS = ("head ", "printf ", "echo ", "python -c ", "jupyter kernelspec list")
#: Options that configure TensorFlow's devices, which a process can do only before it first uses
#: them: such a command runs in a process of its own.
OWN_PROCESS_OPTIONS = ("--replicas",)
EXIT_STATUS = re.compile(r"#.*\bexit status (\d+)")


def rel(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def snippets(page: Path):
    """The page's ```python and ```bash blocks: (language, code, first line, skip reason or None)."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.fullmatch(r"```(python|bash)", lines[i])
        if fence:
            mark = SKIP_MARK.match(lines[i - 1]) if i else None
            end = lines.index("```", i + 1)
            blocks.append((fence.group(1), "\n".join(lines[i + 1:end]) + "\n", i + 2,
                           mark.group(1) if mark else None))
            i = end
        i += 1
    return blocks


def shell_lines(code: str):
    """Commands of a bash block: continuation lines joined, comment and blank lines dropped."""
    for line in code.replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def for_this_machine(text: str, port: int) -> str:
    """The page's text with the shared data's absolute path and the page's serving port."""
    return text.replace("../shared/data", str(SHARED)).replace("8500", str(port))


def expand(line: str, variables: dict) -> str:
    """`$NAME` / `${NAME}` of the page's own assignments, as the reader's shell would expand them."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), line)


def run_in_process(module: str, argv: list[str]) -> int:
    """`python -m module argv...` in this process: its exit status."""
    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        with warnings.catch_warnings():  # an earlier line imported it: running it as __main__ again is the point
            warnings.filterwarnings("ignore", "'.*' found in sys.modules after import of package", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = saved
    return 0


def wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"background command exited {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"nothing listens on port {port} after {seconds} s")


def check_pip_install(words: list[str]) -> None:
    """A pip line is not run; its requirement must parse, and a local extra must exist."""
    setup = ast.parse((REPO / "setup.py").read_text())
    extras = next(ast.literal_eval(k.value) for node in ast.walk(setup) if isinstance(node, ast.Call)
                  for k in node.keywords if k.arg == "extras_require")
    for spec in (w for w in words[2:] if not w.startswith("-")):
        requirement = Requirement("tf_gru4rec" + spec[1:] if spec.startswith(".") else spec)
        if spec.startswith("."):
            assert requirement.extras <= set(extras), f"{spec}: no such extra in setup.py"


class Shell:
    """Runs a page's bash lines in its working folder; background commands stop with it."""

    def __init__(self, cwd: Path, port: int):
        self.cwd, self.port, self.variables, self.background = cwd, port, {}, []
        self.env = dict(os.environ, PYTHONPATH=str(REPO),
                        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    def run(self, line: str) -> None:
        """Runs one line, or fails the test."""
        line = for_this_machine(expand(line, self.variables), self.port)
        assignment = re.fullmatch(r"(?:export )?(\w+)=(\S+)(?:\s+#.*)?", line)
        if assignment:
            name, value = assignment.group(1), shlex.split(assignment.group(2))[0]
            self.variables[name] = value
            if line.startswith("export "):
                self.env[name] = value
            return
        for command in re.split(r"\s&&\s", line):
            self.run_command(command.strip(), line)

    def run_command(self, command: str, line: str) -> None:
        status = EXIT_STATUS.search(command)
        expected = int(status.group(1)) if status else 0
        words = shlex.split(command, comments=True)
        text = " ".join(words)
        if text in RUN_ELSEWHERE or any(text.startswith(prefix) for prefix in NOT_RUN):
            return
        if words[:2] == ["pip", "install"]:
            return check_pip_install(words)
        if words[:2] == ["python", "-m"] and words[2].startswith("tf_gru4rec."):
            module, argv = words[2], words[3:]
            if argv and argv[-1] == "&":
                return self.start(module, argv[:-1])
            if any(option in argv for option in OWN_PROCESS_OPTIONS):
                proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=self.cwd, env=self.env,
                                      capture_output=True, text=True, timeout=300, check=False)
                code = proc.returncode
                assert code == expected, f"{line}\nexit {code}: {proc.stderr[-3000:]}"
                return
            code = run_in_process(module, argv)
            assert code == expected, f"{line}\nexit status {code}, expected {expected} (its stderr is above)"
            return
        if command.startswith(SHELL_COMMANDS):
            proc = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=60, check=False)
            assert proc.returncode == expected, f"{line}\nexit {proc.returncode}: {proc.stderr[-2000:]}"
            return
        pytest.fail(f"{line}: not a command this test knows how to run; add it to SHELL_COMMANDS "
                    "(cheap, writes only in the working folder) or NOT_RUN (with the reason)")

    def start(self, module: str, argv: list[str]) -> None:
        """A `... &` line: a background process, ready once its `--port` listens."""
        if "--port" not in argv:
            pytest.fail(f"python -m {module} ... &: name its --port, so this test knows when it is ready")
        log = self.cwd / f"background-{len(self.background)}.log"  # a file: a full pipe would block it
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=self.cwd, env=self.env,
                                       stdout=out, stderr=subprocess.STDOUT)
        self.background.append(process)
        wait_for_port(int(argv[argv.index("--port") + 1]), process, log)

    def stop(self) -> None:
        for process in self.background:
            process.terminate()
            process.wait(timeout=30)


def test_site_builds_strictly(tmp_path):
    """Warnings are errors: a broken link, a missing page or a docstring mkdocstrings cannot read."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert (tmp_path / "site" / "api" / "models" / "index.html").exists()


def test_every_package_folder_has_an_api_page_naming_each_of_its_modules():
    for folder in PACKAGE_FOLDERS:
        page = REPO / "docs" / "api" / f"{folder}.md"
        assert page.exists(), f"no API page for tf_gru4rec/{folder}/"
        named = set(re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M))
        modules = {".".join(p.relative_to(REPO).with_suffix("").parts)
                   for p in (REPO / "tf_gru4rec" / folder).rglob("*.py") if p.name != "__init__.py"
                   and (p.parent / "__init__.py").exists()}
        assert modules <= named, f"{page.name} does not document {sorted(modules - named)}"


def test_skipped_snippets_are_the_listed_ones():
    skipped = {}
    for page in PAGES:
        reasons = [reason for *_, reason in snippets(page) if reason]
        if reasons:
            skipped[rel(page)] = len(reasons)
            print(f"{rel(page)}: {len(reasons)} snippet(s) not run: {'; '.join(reasons)}")
    assert skipped == SKIPPED


@pytest.mark.parametrize("page", [page for page in PAGES if snippets(page)], ids=rel)
def test_page_snippets_run(page, tmp_path, monkeypatch):
    blocks = [b for b in snippets(page) if not b[3]]
    if any("../shared/data" in code for _, code, _, _ in blocks) and not SHARED.exists():
        pytest.skip(f"{SHARED} is absent")
    monkeypatch.chdir(tmp_path)
    port = free_port()
    namespace, shell = {"__name__": "__snippet__"}, Shell(tmp_path, port)
    try:
        for language, code, line, _ in blocks:
            if language == "python":  # blank lines first, so a traceback gives the page's line numbers
                source = "\n" * (line - 1) + for_this_machine(code, port)
                exec(compile(source, rel(page), "exec"), namespace)  # noqa: S102
            else:
                for command in shell_lines(code):
                    shell.run(command)
    finally:
        shell.stop()
