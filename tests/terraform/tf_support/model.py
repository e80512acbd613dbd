"""Load Terraform modules and environments and evaluate them offline.

``load_repo`` reads terraform/modules/* and terraform/envs/*. For each
environment, ``Environment.root`` is the root module instantiated with the
environment's tfvars. Child modules are instantiated per ``for_each`` key,
with the arguments the root passes them. Every instance can render its
resources (attributes and nested blocks, with ``dynamic`` blocks expanded)
and check its variable validations and resource preconditions, which is the
part of ``terraform plan`` that needs no provider.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

from .hcl_expr import (
    UNKNOWN,
    EvalError,
    LazyAttributes,
    Literal,
    ObjectExpr,
    Scope,
    TupleExpr,
    evaluate,
    parse_template,
    to_string,
)
from .tf_types import convert, parse_type

HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)

# Arguments of resource and module blocks that are Terraform meta-arguments,
# not inputs.
RESOURCE_META_ARGUMENTS = frozenset(
    {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
)
MODULE_META_ARGUMENTS = frozenset({"source", "version", "count", "for_each", "depends_on", "providers"})


class ConfigurationError(Exception):
    """The configuration is invalid in a way Terraform rejects before evaluating anything."""


@dataclass
class SourceFile:
    path: Path
    relative_path: str
    data: dict


@dataclass
class Block:
    kind: str
    labels: tuple[str, ...]
    body: dict
    file: SourceFile

    @property
    def address(self) -> str:
        if self.kind == "resource":
            return ".".join(self.labels)
        return ".".join((self.kind, *self.labels))


def parse_hcl_file(path: Path) -> dict:
    """Parse one .tf or .tfvars file with python-hcl2."""
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def is_block_list(value) -> bool:
    """Tell whether a python-hcl2 value is a list of nested blocks rather than an attribute value."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("__is_block__") for item in value)
    )


def raw_to_node(raw):
    """Turn a python-hcl2 value (or a JSON configuration value) into an expression node."""
    if isinstance(raw, str):
        if raw.startswith("<<"):
            return parse_template(heredoc_text(raw))
        return parse_template(raw)
    if isinstance(raw, list):
        return TupleExpr(tuple(raw_to_node(item) for item in raw))
    if isinstance(raw, dict):
        items = tuple((Literal(key), raw_to_node(value)) for key, value in raw.items() if not key.startswith("__"))
        return ObjectExpr(items)
    return Literal(raw)


def heredoc_text(raw: str) -> str:
    """Return the content of a heredoc as python-hcl2 keeps it (``<<-EOT ... EOT``)."""
    lines = raw.split("\n")
    marker = lines[0]
    body = lines[1:-1]
    text = "\n".join(body) + "\n"
    return textwrap.dedent(text) if marker.startswith("<<-") else text


def literal_value(raw):
    """Evaluate a value that may not refer to anything (tfvars entries, variable defaults)."""
    return evaluate(raw_to_node(raw), Scope({}))


class ModuleSource:
    """Every block of one Terraform module directory, as parsed from its files."""

    def __init__(self, directory: Path, repo_root: Path):
        self.directory = directory.resolve()
        self.repo_root = repo_root.resolve()
        self.files: list[SourceFile] = []
        self.variables: dict[str, Block] = {}
        self.locals: dict[str, tuple[Any, SourceFile]] = {}
        self.resources: dict[tuple[str, str], Block] = {}
        self.data_sources: dict[tuple[str, str], Block] = {}
        self.modules: dict[str, Block] = {}
        self.outputs: dict[str, Block] = {}
        self.terraform_blocks: list[Block] = []
        self.providers: list[Block] = []
        for path in sorted(self.directory.glob("*.tf")):
            self._add_file(path, parse_hcl_file(path))
        for path in sorted(self.directory.glob("*.tf.json")):
            self._add_file(path, json.loads(path.read_text()))

    def relative(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.repo_root))

    @property
    def relative_directory(self) -> str:
        return self.relative(self.directory)

    def _add_file(self, path: Path, data: dict) -> None:
        source_file = SourceFile(path, self.relative(path), data)
        self.files.append(source_file)
        for kind, value in data.items():
            if kind == "//":
                continue
            # .tf files give a list of blocks per kind, .tf.json files may give one object.
            entries = value if isinstance(value, list) else [value]
            for entry in entries:
                self._add_entry(kind, entry, source_file)

    def _add_entry(self, kind: str, entry: dict, source_file: SourceFile) -> None:
        if kind == "locals":
            for name, value in entry.items():
                if name.startswith("__") or name == "//":
                    continue
                if name in self.locals:
                    raise ConfigurationError(f"{source_file.relative_path}: local.{name} is declared twice")
                self.locals[name] = (value, source_file)
        elif kind in ("resource", "data"):
            target = self.resources if kind == "resource" else self.data_sources
            for resource_type, named in _labelled(entry):
                for name, body in _labelled(named):
                    target[(resource_type, name)] = Block(kind, (resource_type, name), body, source_file)
        elif kind in ("variable", "module", "output"):
            target = {"variable": self.variables, "module": self.modules, "output": self.outputs}[kind]
            for name, body in _labelled(entry):
                target[name] = Block(kind, (name,), body, source_file)
        elif kind == "terraform":
            self.terraform_blocks.append(Block(kind, (), entry, source_file))
        elif kind == "provider":
            for name, body in _labelled(entry):
                self.providers.append(Block(kind, (name,), body, source_file))
        else:
            raise ConfigurationError(
                f"{source_file.relative_path}: top-level block {kind!r} is not understood by the offline checks"
            )

    def backend(self) -> tuple[str, dict, SourceFile] | None:
        """Return (backend type, settings, file) of the terraform block, or None without a backend."""
        for block in self.terraform_blocks:
            for backend in block.body.get("backend", []):
                for backend_type, settings in _labelled(backend):
                    return backend_type, settings, block.file
        return None


def _labelled(entry: dict):
    return [(key, value) for key, value in entry.items() if not key.startswith("__")]


_SOURCE_CACHE: dict[Path, ModuleSource] = {}


def load_module_source(directory: Path, repo_root: Path) -> ModuleSource:
    """Load a module directory once per test session."""
    key = directory.resolve()
    if key not in _SOURCE_CACHE:
        _SOURCE_CACHE[key] = ModuleSource(directory, repo_root)
    return _SOURCE_CACHE[key]


@dataclass
class Check:
    """One validation or precondition result that the offline evaluation produced."""

    file: str
    address: str
    passed: bool | None  # None: the condition depends on values known only after apply
    message: str


@dataclass
class RenderedInstance:
    """One instance of a resource: its key and its arguments and nested blocks with values."""

    address: str
    key: Any
    values: dict
    block: Block


class ModuleInstance:
    """A module with concrete input values, as Terraform evaluates it during plan."""

    def __init__(self, source: ModuleSource, inputs: dict, address: str, caller_file: str):
        self.source = source
        self.address = address
        self.caller_file = caller_file
        self.input_errors: list[str] = []
        self.undeclared_attributes: list[str] = []
        self.variables = self._bind_variables(inputs)
        self._local_values: dict[str, Any] = {}
        self._locals_in_progress: set[str] = set()
        self.scope = Scope(
            {
                "var": self.variables,
                "local": LazyAttributes("local", self.local),
                "path": {"module": str(source.directory), "root": str(source.directory), "cwd": str(source.directory)},
                "terraform": {"workspace": "default"},
            }
        )

    def _bind_variables(self, inputs: dict) -> dict:
        values = {}
        for name in inputs:
            if name not in self.source.variables:
                self.input_errors.append(f"{self.caller_file}: {self.address} has no variable {name!r}")
        for name, block in self.source.variables.items():
            if name in inputs:
                raw_value = inputs[name]
            elif "default" in block.body:
                raw_value = literal_value(block.body["default"])
            else:
                self.input_errors.append(f"{self.caller_file}: {self.address} needs a value for variable {name!r}")
                continue
            try:
                conversion = convert(raw_value, parse_type(block.body.get("type")), name)
            except EvalError as error:
                self.input_errors.append(
                    f"{self.caller_file}: {self.address}: invalid value for variable {name!r}: {error}"
                )
                continue
            values[name] = conversion.value
            self.undeclared_attributes.extend(conversion.undeclared_attributes)
        return values

    def local(self, name: str):
        if name in self._local_values:
            return self._local_values[name]
        if name not in self.source.locals:
            raise ConfigurationError(f"{self.source.relative_directory}: local.{name} is not declared")
        if name in self._locals_in_progress:
            raise ConfigurationError(f"{self.source.relative_directory}: local.{name} refers to itself")
        self._locals_in_progress.add(name)
        try:
            value = evaluate(raw_to_node(self.source.locals[name][0]), self.scope)
        finally:
            self._locals_in_progress.discard(name)
        self._local_values[name] = value
        return value

    def evaluate_raw(self, raw, scope: Scope | None = None):
        return evaluate(raw_to_node(raw), scope or self.scope)

    # Resources.

    def instance_keys(self, body: dict, scope: Scope) -> list[tuple[Any, Scope]]:
        """Return (key, scope with each or count) for every instance a block's for_each or count makes."""
        if "for_each" in body:
            collection = self.evaluate_raw(body["for_each"], scope)
            if collection is UNKNOWN:
                return [(UNKNOWN, scope.child({"each": {"key": UNKNOWN, "value": UNKNOWN}}))]
            if isinstance(collection, dict):
                items = sorted(collection.items())
            elif isinstance(collection, list):
                items = [(to_string(item), item) for item in collection]
            else:
                raise ConfigurationError(f"{self.address}: for_each needs a map or a set, got {collection!r}")
            return [(key, scope.child({"each": {"key": key, "value": value}})) for key, value in items]
        if "count" in body:
            count = self.evaluate_raw(body["count"], scope)
            if count is UNKNOWN:
                return [(UNKNOWN, scope.child({"count": {"index": UNKNOWN}}))]
            return [(index, scope.child({"count": {"index": index}})) for index in range(int(count))]
        return [(None, scope)]

    def render_resource(self, resource_type: str, name: str) -> list[RenderedInstance]:
        """Render every instance of a resource: argument values and nested blocks."""
        block = self.source.resources[(resource_type, name)]
        rendered = []
        for key, scope in self.instance_keys(block.body, self.scope):
            address = f"{self.address}.{block.address}" if self.address else block.address
            if key is not None:
                address += f"[{json.dumps(key)}]"
            values = self.render_body(block.body, scope, RESOURCE_META_ARGUMENTS)
            rendered.append(RenderedInstance(address, key, values, block))
        return rendered

    def render_body(self, body: dict, scope: Scope, skip: frozenset = frozenset()) -> dict:
        """Evaluate the attributes of a block body and render its nested and dynamic blocks."""
        result: dict = {}
        for name, raw in body.items():
            if name.startswith("__") or name in skip:
                continue
            if name == "dynamic":
                for dynamic in raw:
                    for block_name, dynamic_body in _labelled(dynamic):
                        expanded = self._expand_dynamic(block_name, dynamic_body, scope)
                        if expanded is UNKNOWN:
                            result[block_name] = UNKNOWN
                        elif result.get(block_name) is not UNKNOWN:
                            result.setdefault(block_name, []).extend(expanded)
            elif is_block_list(raw):
                result.setdefault(name, []).extend(self.render_body(item, scope) for item in raw)
            else:
                result[name] = self.evaluate_raw(raw, scope)
        return result

    def _expand_dynamic(self, block_name: str, body: dict, scope: Scope):
        collection = self.evaluate_raw(body["for_each"], scope)
        if collection is UNKNOWN:
            return UNKNOWN
        iterator = block_name
        if "iterator" in body:
            iterator = str(body["iterator"]).removeprefix("${").removesuffix("}")
        items = sorted(collection.items()) if isinstance(collection, dict) else list(enumerate(collection))
        content = body["content"][0]
        return [
            self.render_body(content, scope.child({iterator: {"key": key, "value": value}})) for key, value in items
        ]

    # Checks.

    def check_validations(self) -> list[Check]:
        """Evaluate every variable validation block against the bound values."""
        checks = []
        for name, block in self.source.variables.items():
            if name not in self.variables:
                continue
            for validation in block.body.get("validation", []):
                checks.append(self._check(block, f"{self.address or 'root'} var.{name}", validation, self.scope))
        return checks

    def check_preconditions(self) -> list[Check]:
        """Evaluate every resource precondition, once per resource instance."""
        checks = []
        for block in self.source.resources.values():
            for lifecycle in block.body.get("lifecycle", []):
                conditions = lifecycle.get("precondition", [])
                if not conditions:
                    continue
                for key, scope in self.instance_keys(block.body, self.scope):
                    address = f"{self.address}.{block.address}" if self.address else block.address
                    if key is not None:
                        address += f"[{json.dumps(key)}]"
                    checks.extend(self._check(block, address, condition, scope) for condition in conditions)
        return checks

    def _check(self, block: Block, address: str, rule: dict, scope: Scope) -> Check:
        try:
            passed = self.evaluate_raw(rule["condition"], scope)
        except EvalError as error:
            return Check(block.file.relative_path, address, False, f"the condition failed to evaluate: {error}")
        if passed is UNKNOWN:
            return Check(block.file.relative_path, address, None, "depends on values known only after apply")
        message = ""
        if not passed:
            try:
                message = to_string(self.evaluate_raw(rule["error_message"], scope))
            except EvalError as error:
                message = f"(error_message failed to evaluate: {error})"
        return Check(block.file.relative_path, address, bool(passed), message)

    # Child modules.

    @cached_property
    def children(self) -> dict[str, dict[Any, ModuleInstance]]:
        """Child module instances by module block name and for_each key."""
        result: dict[str, dict[Any, ModuleInstance]] = {}
        for name, block in self.source.modules.items():
            source_path = (self.source.directory / literal_value(block.body["source"])).resolve()
            child_source = load_module_source(source_path, self.source.repo_root)
            result[name] = {}
            for key, scope in self.instance_keys(block.body, self.scope):
                inputs = {
                    argument: self.evaluate_raw(raw, scope)
                    for argument, raw in block.body.items()
                    if not argument.startswith("__") and argument not in MODULE_META_ARGUMENTS
                }
                address = f"{self.address + '.' if self.address else ''}module.{name}"
                if key is not None:
                    address += f"[{json.dumps(key)}]"
                result[name][key] = ModuleInstance(child_source, inputs, address, block.file.relative_path)
        return result

    def walk(self):
        """Yield this instance and every descendant module instance."""
        yield self
        for instances in self.children.values():
            for child in instances.values():
                yield from child.walk()


@dataclass
class Environment:
    """One directory under terraform/envs with its tfvars, instantiated as a root module."""

    name: str
    source: ModuleSource
    tfvars_path: Path
    tfvars_relative_path: str
    tfvars: dict
    root: ModuleInstance = field(init=False)

    def __post_init__(self):
        self.root = ModuleInstance(self.source, self.tfvars, "", self.tfvars_relative_path)


def load_tfvars(path: Path) -> dict:
    """Load a .tfvars file into plain values."""
    return {name: literal_value(raw) for name, raw in parse_hcl_file(path).items() if not name.startswith("__")}


@dataclass
class TerraformRepo:
    """The terraform/ tree and the inventories/ tree of one checkout (or of a mutated copy)."""

    root: Path

    @cached_property
    def terraform_dir(self) -> Path:
        return self.root / "terraform"

    @cached_property
    def modules(self) -> dict[str, ModuleSource]:
        return {
            path.name: load_module_source(path, self.root)
            for path in sorted((self.terraform_dir / "modules").iterdir())
            if path.is_dir()
        }

    @cached_property
    def environments(self) -> dict[str, Environment]:
        environments = {}
        for path in sorted((self.terraform_dir / "envs").iterdir()):
            if not path.is_dir():
                continue
            tfvars_path = path / "terraform.tfvars"
            tfvars = load_tfvars(tfvars_path) if tfvars_path.exists() else {}
            for extra in sorted(path.glob("*.auto.tfvars")):
                tfvars.update(load_tfvars(extra))
            environments[path.name] = Environment(
                path.name, load_module_source(path, self.root), tfvars_path, self.relative(tfvars_path), tfvars
            )
        return environments

    def relative(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.root.resolve()))

    def all_sources(self) -> list[ModuleSource]:
        return [*self.modules.values(), *(environment.source for environment in self.environments.values())]


def load_repo(root: Path) -> TerraformRepo:
    """Load the Terraform configuration under ``root``."""
    return TerraformRepo(Path(root))


def sanitize_group_name(name: str) -> str:
    """Turn a label value into the inventory group suffix: every character outside [A-Za-z0-9_] becomes _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
