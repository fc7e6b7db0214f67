"""The package layout: folders are pipeline stages and import only earlier ones.

Reads every import statement of the package (module level and inside functions alike; the
`if __name__ == "__main__":` block of a module that is also a command is its entry point, not
library code) and checks: no module imports a later stage, nothing outside `cli` imports
`cli`, and the module graph has no cycle. The checker itself is tested on copies of the
package with a violation planted.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tf_gru4rec"
STAGES = ("system", "data", "layers", "losses", "optimizers", "tasks", "models", "evaluation",
          "training", "serving", "cli")
#: Top-level modules that are only `python -m tf_gru4rec.X` entry points: part of `cli`.
ENTRY_POINTS = ("train", "evaluate", "export", "daily", "tune", "preprocess")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package's own __init__: lazy names, it imports nothing eagerly
    return "cli" if parts[1] in ENTRY_POINTS else parts[1]


def _is_main_block(node) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def imported_modules(tree, modules: set[str]):
    """(line, module) of each import of the package in `tree`, outside `__main__` blocks."""
    pending = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if _is_main_block(child):
                continue
            pending.append(child)
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # `from a.b import c` imports module a.b.c when there is one, else a.b.
                names = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in modules
                         else child.module for a in child.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "tf_gru4rec":
                    yield child.lineno, name


def layout_problems(root: Path = PACKAGE) -> list[str]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph, problems = {}, []
    for module, path in files.items():
        graph[module] = set()
        for line, target in imported_modules(ast.parse(path.read_text()), set(files)):
            where = f"{path.relative_to(root.parent)}:{line}"
            graph[module].add(target)
            s, t = stage(module), stage(target)
            if s is None or t is None:
                continue
            if t == "cli" and s != "cli":
                problems.append(f"{where}: library module {module} imports the command line ({target})")
            elif STAGES.index(t) > STAGES.index(s):
                problems.append(f"{where}: {module} ({s}) imports the later stage {t} ({target})")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component) + [sorted(component)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_stages_import_only_earlier_stages_and_nothing_imports_the_cli():
    assert layout_problems() == []


def test_every_folder_is_a_stage():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(STAGES)
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert loose == set(ENTRY_POINTS)


@pytest.fixture()
def package_copy(tmp_path):
    root = tmp_path / "tf_gru4rec"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def plant(path: Path, line: str, where: str = "function") -> None:
    text = path.read_text()
    path.write_text(text + (f"\n\ndef _planted():\n    {line}\n" if where == "function" else f"\n{line}\n"))


def test_the_checker_finds_a_library_import_of_the_cli(package_copy):
    plant(package_copy / "data" / "sessions.py", "from tf_gru4rec.cli.common import log")
    line = len((package_copy / "data" / "sessions.py").read_text().splitlines())
    problems = layout_problems(package_copy)
    assert problems[0] == (f"tf_gru4rec/data/sessions.py:{line}: library module "
                           "tf_gru4rec.data.sessions imports the command line (tf_gru4rec.cli.common)")
    assert problems[1].startswith("import cycle: tf_gru4rec.cli.common -> ")  # cli imports data


def test_the_checker_finds_an_import_of_a_later_stage(package_copy):
    plant(package_copy / "models" / "gru4rec.py", "from tf_gru4rec.serving import rules", where="top")
    (problem,) = layout_problems(package_copy)
    assert problem.endswith("tf_gru4rec.models.gru4rec (models) imports the later stage serving "
                            "(tf_gru4rec.serving.rules)")


def test_the_checker_finds_a_cycle_within_a_stage(package_copy):
    # training.model_dir <- training.warm_start <- training.trainer: closing the loop is a cycle.
    plant(package_copy / "training" / "model_dir.py", "from tf_gru4rec.training.trainer import train")
    assert layout_problems(package_copy) == [
        "import cycle: tf_gru4rec.training.model_dir -> tf_gru4rec.training.trainer -> "
        "tf_gru4rec.training.warm_start -> tf_gru4rec.training.model_dir"]


def test_an_entry_point_block_may_run_the_command(package_copy):
    # `python -m tf_gru4rec.serving.client` runs the command from the module's __main__ block.
    plant(package_copy / "serving" / "rules.py",
          'if __name__ == "__main__":\n    from tf_gru4rec.cli.client import main', where="top")
    assert layout_problems(package_copy) == []


#: `dir(tf_gru4rec)`'s public names in release 0.1.0, before the package had folders.
RELEASE_0_1_NAMES = {
    "AdagradM", "BPR", "BPRMax", "Columns", "CrossEntropy", "DataError", "EvaluationCallback",
    "Evaluator", "EventsPerSecond", "GRU4Rec", "GRU4RecLoss", "GRU4RecParams", "ItemMap",
    "ParamError", "SessionData", "SessionParallelBatcher", "TOP1", "TOP1Max", "TrainResult",
    "evaluate", "load_model_dir", "parse_params", "read_sessions", "save_model_dir", "train",
}


def test_the_public_names_of_release_0_1_are_all_still_there():
    import tf_gru4rec

    assert set(tf_gru4rec.__all__) == RELEASE_0_1_NAMES | {"Recommender"}
    for name in tf_gru4rec.__all__:
        value = getattr(tf_gru4rec, name)
        assert getattr(value, "__name__", name) == name
