"""Deterministic generated monorepos: nested packages, non-Python files, ignored directories, git.

A tree of N files (not counting `.git`) is laid out as

    repo/
      .gitignore .watchmanconfig bench_probe.py
      services/svc_NN/pkg_NN/sub_NN/...   ~72%: packages, mostly .py, some .json/.md/.txt/...
      services/svc_NN/pkg_NN/__pycache__/  ~8%: *.pyc next to the sources (git-ignored)
      node_modules/<pkg>/...               ~10%: .js/.json, a few .py (git-ignored)
      .venv/lib/python3.11/site-packages/  ~10%: .py (git-ignored)

It is a git repository whose `main` branch holds the tracked files and whose `other` branch
differs from it in `branch_diff` files (modified, plus a few added and deleted). The same seed
always gives the same tree. A manifest next to the repository lists the files the harness edits.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

GENERATOR_VERSION = 4
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    # No background `gc --auto` after the big commits: it deletes .git/objects/?? directories
    # while a scan (Django's StatReloader globs into .git) is walking them.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "gc.auto",
    "GIT_CONFIG_VALUE_0": "0",
}
GIT_TIMEOUT_S = 600.0
SOURCE_EXTENSIONS = (
    (".py", 80),
    (".json", 4),
    (".md", 4),
    (".txt", 3),
    (".html", 3),
    (".css", 2),
    (".yaml", 2),
    (".js", 2),
)
WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
    "request",
    "response",
    "handler",
    "service",
    "model",
    "view",
    "queue",
)


@dataclass(frozen=True)
class Manifest:
    root: str
    n_files: int
    seed: int
    branch_diff: int
    source_py: list[str]  # tracked .py files in the packages (relative); edits and bursts use these
    ignored_py: list[str]  # .py files under node_modules/ and .venv/ (relative)
    pycache_dirs: list[str]  # __pycache__ directories (relative)
    probe: str  # the file the harness touches until a watcher reports its first change

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_text()))


def git(repo: Path, *args: str, timeout_s: float = GIT_TIMEOUT_S) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return done.stdout


def _text(rng: random.Random, lines: int) -> str:
    return "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) for _ in range(lines)) + "\n"


def python_source(rng: random.Random, name: str, variant: int = 0) -> str:
    funcs = []
    for i in range(rng.randint(2, 6)):
        a, b = rng.sample(WORDS, 2)
        funcs.append(
            f"def {a}_{b}_{i}(value: int) -> int:\n"
            f'    """{" ".join(rng.choices(WORDS, k=6))}."""\n'
            f"    return value * {rng.randint(1, 99)} + {variant}\n"
        )
    return f'"""Module {name}."""\n\nimport os\n\n\n' + "\n\n".join(funcs)


def _content(rng: random.Random, rel: str) -> str:
    if rel.endswith(".py"):
        return python_source(rng, rel)
    if rel.endswith(".json"):
        return json.dumps({w: rng.randint(0, 999) for w in rng.sample(WORDS, 5)}) + "\n"
    if rel.endswith(".pyc"):
        return "\0compiled\0" + _text(rng, 2)
    return _text(rng, rng.randint(2, 12))


def _layout(n_files: int, rng: random.Random) -> list[str]:
    """Relative paths of every file, in a deterministic order."""
    n_node = n_files // 10
    n_venv = n_files // 10
    n_cache = n_files * 8 // 100
    n_source = n_files - n_node - n_venv - n_cache - 3  # minus .gitignore, .watchmanconfig, probe
    paths: list[str] = [".gitignore", ".watchmanconfig", "bench_probe.py"]

    source: list[str] = []
    package_dirs: list[str] = []
    svc = 0
    while len(source) < n_source:
        for pkg in range(rng.randint(3, 6)):
            for sub in range(rng.randint(2, 5)):
                depth = rng.randint(0, 2)
                parts = [f"services/svc_{svc:03d}", f"pkg_{pkg:02d}", f"sub_{sub:02d}"]
                parts += [f"deep_{d}" for d in range(depth)]
                directory = "/".join(parts)
                package_dirs.append(directory)
                source.append(f"{directory}/__init__.py")
                for i in range(rng.randint(8, 30)):
                    ext = rng.choices(
                        [e for e, _ in SOURCE_EXTENSIONS], [w for _, w in SOURCE_EXTENSIONS]
                    )[0]
                    source.append(f"{directory}/{rng.choice(WORDS)}_{i:02d}{ext}")
        svc += 1
    source = source[:n_source]
    paths += source

    live_dirs = sorted({p.rsplit("/", 1)[0] for p in source})
    for i in range(n_cache):
        directory = live_dirs[i % len(live_dirs)]
        paths.append(f"{directory}/__pycache__/mod_{i:06d}.cpython-311.pyc")

    for i in range(n_node):
        # a top-level node_modules and one nested in a frontend service, as monorepos have
        base = "node_modules" if i % 4 else "services/svc_000/node_modules"
        pkg = f"{base}/npm_{(i // 12):04d}"
        ext = ".py" if i % 10 == 0 else rng.choice([".js", ".js", ".json", ".md"])
        paths.append(f"{pkg}/lib/file_{i:06d}{ext}")

    for i in range(n_venv):
        pkg = f".venv/lib/python3.11/site-packages/dist_{(i // 15):04d}"
        paths.append(f"{pkg}/module_{i:06d}.py")
    return paths


def build_tree(directory: Path, n_files: int, seed: int, branch_diff: int) -> Manifest:
    """Create (or reuse) the tree under `directory`; return its manifest."""
    repo = directory / "repo"
    manifest_path = directory / "manifest.json"
    stamp = {"version": GENERATOR_VERSION, "n": n_files, "seed": seed, "diff": branch_diff}
    stamp_path = directory / "stamp.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        reset_tree(Manifest.load(manifest_path))
        return Manifest.load(manifest_path)
    if directory.exists():
        shutil.rmtree(directory)
    repo.mkdir(parents=True)

    rng = random.Random(seed)
    paths = _layout(n_files, rng)
    made: set[str] = set()
    for rel in paths:
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if parent and parent not in made:
            (repo / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        if rel == ".gitignore":
            text = "node_modules/\n.venv/\n__pycache__/\n"
        elif rel == ".watchmanconfig":
            text = "{}\n"
        else:
            text = _content(rng, rel)
        (repo / rel).write_text(text)

    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated tree")

    source_py = [
        p
        for p in paths
        if p.endswith(".py") and p.startswith("services/") and "/node_modules/" not in p
    ]
    tracked = [p for p in paths if p.startswith("services/") and "node_modules" not in p]
    tracked = [p for p in tracked if "__pycache__" not in p]
    git(repo, "checkout", "-q", "-b", "other")
    n_removed = branch_diff // 50  # and as many added: the rest are modified
    changed = rng.sample(tracked, min(branch_diff - n_removed, len(tracked)))
    for rel in changed[:n_removed]:
        (repo / rel).unlink()
    for rel in changed[n_removed:]:
        with open(repo / rel, "a") as f:
            f.write(f"# changed on branch other ({rng.randint(0, 10**9)})\n")
    for i in range(n_removed):  # as many files added as removed
        rel = f"{source_py[i].rsplit('/', 1)[0]}/added_on_other_{i:04d}.py"
        (repo / rel).write_text(python_source(rng, rel))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "other branch")
    git(repo, "checkout", "-q", "main")

    manifest = Manifest(
        root=str(repo.resolve()),
        n_files=n_files,
        seed=seed,
        branch_diff=branch_diff,
        source_py=source_py,
        ignored_py=[
            p for p in paths if p.endswith(".py") and ("node_modules/" in p or ".venv/" in p)
        ],
        pycache_dirs=sorted({p.rsplit("/", 1)[0] for p in paths if "__pycache__" in p}),
        probe="bench_probe.py",
    )
    manifest_path.write_text(json.dumps(asdict(manifest)))
    stamp_path.write_text(json.dumps(stamp))
    return manifest


SCRATCH_PREFIX = "_bench_"


def reset_tree(manifest: Manifest) -> None:
    """Back to the committed `main` state, and remove the files the harness created."""
    repo = Path(manifest.root)
    git(repo, "checkout", "-q", "-f", "main")
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-q", "-fd")  # untracked, not ignored
    for directory in manifest.pycache_dirs[:50]:
        for path in (repo / directory).glob(f"{SCRATCH_PREFIX}*"):
            path.unlink()
    for rel in ignored_edit_targets(manifest):
        path = repo / rel
        if path.read_text().endswith("# bench edit\n"):
            path.write_text(path.read_text().removesuffix("# bench edit\n"))


def ignored_edit_targets(manifest: Manifest, per_dir: int = 10) -> list[str]:
    """The .py files under node_modules/ and .venv/ that the ignored-writes phase edits."""
    node = [p for p in manifest.ignored_py if "node_modules/" in p][:per_dir]
    venv = [p for p in manifest.ignored_py if p.startswith(".venv/")][:per_dir]
    return node + venv
