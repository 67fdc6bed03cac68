"""Typed options: one dataclass field per option, holding its default, its help and its bounds.

An option is declared once, as a field made with :func:`option`. From that field come the command
line flag (``--field-name``, with its type, default and help: :func:`add_config_arguments`), the
check of its value (``Config.__post_init__``, so the Python API refuses what the CLI refuses) and
its entry in the ``config.yaml`` a run writes and ``--config`` reads back, flags overriding the
file. That is TRL's convention (a ``GRPOConfig`` dataclass read by ``TrlParser``).

We generate the flags here rather than with transformers' ``HfArgumentParser`` because that class is
a whole parser of its own: ``train`` is one sub-command of ``rlprompt-interp`` whose flags come from
several configs as argument groups beside hand-written ones (the task's), keeps dashed flag names and
deprecated old spellings, and reports a usage error as one line like every other command.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.resources
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from .atomic import write_atomic
from .models import AUTO_DTYPE_HELP, DTYPE_CHOICES
from .notices import warn

ENVIRONMENT = "environment"  # the section of a written config that records, and is not read back
RECIPES = "rlprompt_interp.recipes"


class ConfigError(ValueError):
    """An option value outside its bounds; ``flag_message`` names the command-line flag instead of the field."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")

    def flag_message(self) -> str:
        return f"{flag_name(self.field)} {self.problem}"


def flag_name(field: str) -> str:
    """``prompts_per_step`` -> ``--prompts-per-step`` (a name that is already a flag stays as it is)."""
    return field if field.startswith("--") else "--" + field.replace("_", "-")


def option(default: Any, help: str, *, at_least: float | None = None, above: float | None = None,
           at_most: float | None = None, choices: typing.Sequence | None = None, why: str | None = None,
           aliases: typing.Sequence[str] = (), metavar: str | tuple | None = None, append: bool = False,
           required: bool = False, flag: str | None = None) -> Any:
    """A config field: its default, help text and bounds (checked on construction), deprecated flag
    spellings (``aliases``), ``append=True`` for a list given one item per flag, ``required`` for a flag
    that the command line (or a config file) must give, ``flag`` for a flag not named after the field
    (a ``dict`` field's ``--trl-option KEY=VALUE``, one entry per flag)."""
    metadata = dict(help=help, at_least=at_least, above=above, at_most=at_most, choices=choices, why=why,
                    aliases=tuple(aliases), metavar=metavar, append=append, required=required, flag=flag)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Options:
    """What a config of one section and an agent's config of several share: options given and changed by field
    name, older names converted with a warning."""

    RENAMED: typing.ClassVar[dict] = {}  # an older keyword -> (its field, a conversion of its value)

    @classmethod
    def option_names(cls) -> list[str]:
        raise NotImplementedError

    @classmethod
    def from_options(cls, options: dict) -> "Options":
        raise NotImplementedError

    def options(self) -> dict:
        raise NotImplementedError

    @classmethod
    def of(cls, **options) -> "Options":
        """The config with options given by field name."""
        options = _renamed(cls, options)
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            raise TypeError(f"{cls.__name__} has no options {unknown}; available: {sorted(cls.option_names())}")
        return cls.from_options(options)

    def replace(self, **options) -> "Options":
        """A copy with options changed by field name."""
        return self.of(**{**self.options(), **_renamed(type(self), options)})


@dataclasses.dataclass
class Config(Options):
    """Base of every config: checks each field's bounds, then the subclass's cross-field ``check``.

    None given to a field that cannot be None means its default, from Python as from a flag shared by
    several agents whose unset value means "the agent's own" (``--lr``)."""

    def __post_init__(self):
        hints = field_types(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and not _accepts_none(hints[field.name]):
                value = field.default_factory() if field.default is dataclasses.MISSING else field.default
                setattr(self, field.name, value)
            if isinstance(value, list) and _origin(_without_none(hints[field.name])) is tuple:
                value = tuple(value)  # a YAML or JSON list for a tuple field
                setattr(self, field.name, value)
            if isinstance(value, list) and _origin(_without_none(hints[field.name])) is dict:
                value = dict(value)  # (key, value) pairs from repeated KEY=VALUE flags
                setattr(self, field.name, value)
            check_value(field, value)
        self.check()

    def check(self) -> None:
        """Checks that involve several fields (subclasses raise :class:`ConfigError`)."""

    def to_dict(self) -> dict:
        return plain(dataclasses.asdict(self))

    # the interface this single-section config shares with a sectioned :class:`AgentConfig`

    @classmethod
    def option_names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_options(cls, options: dict) -> "Config":
        return cls(**options)

    @classmethod
    def from_args(cls, args) -> "Config":
        return config_from_args(cls, args)

    def options(self) -> dict:
        """Every option by field name (the values themselves, not made plain)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def resolved(self, task=None) -> "Config":
        """A copy with every ``auto`` replaced by what it means on this machine for ``task`` (the values a run's
        config.yaml records, so that replaying it runs the same models, dtype and condition)."""
        return self

    @classmethod
    def sections(cls, name: str) -> list[tuple[str, type, str]]:
        """``(key, config class, title)`` of each section of the written config: one, named ``name``."""
        return [(name, cls, f"--agent {name}")]


def _renamed(config_class: type, options: dict) -> dict:
    options = dict(options)
    for old, (new, convert) in config_class.RENAMED.items():
        if old in options:
            warn(f"the option {old!r} is deprecated; use {new!r}")
            options[new] = convert(options.pop(old))
    return options


def section(config_class: type, title: str) -> Any:
    """A section of an :class:`AgentConfig`: one config, one argument group, one mapping of the written file."""
    return dataclasses.field(default_factory=config_class, metadata={"title": title})


@dataclasses.dataclass
class AgentConfig(Options):
    """Every option of an agent, one config per concern (a section of its ``config.yaml``); options are
    changed by field name (``replace(lr=1e-3, prior_weight=1)``, each routed to its section) and read as
    attributes of the whole (``config.lr``; a section's name comes first: ``config.reward`` is the reward
    section, ``options()["reward"]`` its spec), so field names are unique across sections."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for key in self.__dict__.values():
            if isinstance(key, Config) and name in {f.name for f in dataclasses.fields(key)}:
                return getattr(key, name)
        raise AttributeError(f"{type(self).__name__} has no option {name!r}")

    @classmethod
    def option_names(cls) -> list[str]:
        return [name for part in dataclasses.fields(cls) for name in part.default_factory.option_names()]

    @classmethod
    def from_options(cls, options: dict) -> "AgentConfig":
        """Each option routed to its section."""
        return cls(**{part.name: part.default_factory(**{k: v for k, v in options.items()
                                                         if k in part.default_factory.option_names()})
                      for part in dataclasses.fields(cls)})

    @classmethod
    def from_args(cls, args) -> "AgentConfig":
        """The config from parsed flags (``--config`` files already merged in)."""
        return cls(**{part.name: config_from_args(part.default_factory, args) for part in dataclasses.fields(cls)})

    @classmethod
    def sections(cls, name: str) -> list[tuple[str, type, str]]:
        return [(part.name, part.default_factory, part.metadata["title"]) for part in dataclasses.fields(cls)]

    def options(self) -> dict:
        """Every option by field name, across sections."""
        return {name: value for part in dataclasses.fields(self) for name, value in getattr(self, part.name).options().items()}

    def resolved(self, task=None) -> "AgentConfig":
        return type(self)(**{part.name: getattr(self, part.name).resolved(task) for part in dataclasses.fields(self)})

    def to_dict(self) -> dict:
        return {part.name: getattr(self, part.name).to_dict() for part in dataclasses.fields(self)}


def build_config(config_class: type, config=None, options: Mapping | None = None):
    """An agent's config from a config object, keyword options, or both (the options change the config)."""
    options = dict(options or {})
    if config is None:
        return config_class.of(**options)
    return config.replace(**options) if options else config


def check_value(field: dataclasses.Field, value: Any) -> None:
    meta = field.metadata
    if value is None or not meta:
        return
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(field.name, f"must be one of {list(meta['choices'])}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, above, high = meta.get("at_least"), meta.get("above"), meta.get("at_most")
    if (low is not None and value < low) or (above is not None and value <= above) or (high is not None and value > high):
        bound = f"at least {low:g}" if low is not None else f"above {above:g}" if above is not None else ""
        if high is not None:
            bound = f"{bound} and at most {high:g}" if bound else f"at most {high:g}"
        why = f": {meta['why'] or meta['help']}" if meta.get("why") or meta.get("help") else ""
        raise ConfigError(field.name, f"must be {bound}, got {value:g}{why}")


def plain(value: Any) -> Any:
    """Plain dicts, lists, numbers and strings, recursively (tuples as lists, other objects and ``str``
    subclasses such as ``torch.__version__`` as text): what YAML, JSON and ``torch.load(weights_only=True)``
    take back."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if value is None or type(value) in (bool, int, float, str):
        return value
    return str(value)


# --------------------------------------------------------------------------- flags from fields


def field_types(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def _origin(annotation) -> Any:
    return typing.get_origin(annotation)


def _without_none(annotation) -> Any:
    """``X | None`` -> ``X``."""
    if _origin(annotation) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def add_config_arguments(group, config_class: type, *, skip: typing.Collection[str] = ()) -> list[str]:
    """A flag per field of ``config_class`` (except ``skip``), named after the field; returns their dests.

    ``--name VALUE`` sets the field; a bool field that defaults to True gets ``--no-name``, one that
    defaults to False ``--name``; ``tuple`` fields take their values in a row, ``append`` lists one per flag.
    Each deprecated alias sets the same field and warns.
    """
    hints = field_types(config_class)
    dests = []
    for field in dataclasses.fields(config_class):
        if field.name in skip or "help" not in field.metadata:
            continue
        kind = _without_none(hints[field.name])
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        meta = field.metadata
        flag = meta.get("flag") or flag_name(field.name)
        if kind is bool:
            flag = flag_name(f"no_{field.name}") if default else flag
            group.add_argument(flag, dest=field.name, action="store_false" if default else "store_true",
                               help=f"(on unless this flag is given) {meta['help']}" if default else meta["help"])
            dests.append(field.name)
            continue
        spec: dict[str, Any] = dict(dest=field.name, default=default, help=meta["help"])
        if meta.get("metavar"):
            spec["metavar"] = meta["metavar"]
        if meta.get("required"):
            spec["required"] = True
        if _origin(kind) is tuple:
            items = typing.get_args(kind)
            spec.update(nargs=len(items), type=items[0])
        elif _origin(kind) is dict:
            spec.update(type=key_value, action="append", default=[])
        elif _origin(kind) is list:
            spec.update(type=typing.get_args(kind)[0])
            spec.update(action="append") if meta.get("append") else spec.update(nargs="+")
        elif _origin(kind) is Literal:
            spec.update(choices=list(typing.get_args(kind)), type=type(typing.get_args(kind)[0]))
        else:
            spec["type"] = kind
            if meta.get("choices") is not None:
                spec["choices"] = list(meta["choices"])
        group.add_argument(flag, **spec)
        for alias in meta.get("aliases", ()):
            alias_spec = {k: v for k, v in spec.items() if k not in ("default", "help", "action")}
            group.add_argument(alias, **alias_spec, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                               action=DeprecatedFlag, replacement=flag)
        dests.append(field.name)
    return dests


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Each flag's help with its real default, once: shown where the flag has a value when omitted, not for
    a switch (its help says what it turns on or off), an unset value (its help says what omitting it means)
    or a help that already names its default."""

    def _get_help_string(self, action):
        help, default = action.help or "", action.default
        if (default is None or default is argparse.SUPPRESS or isinstance(default, bool) or action.nargs == 0
                or default == [] or "default" in help):
            return help
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{help} (default: {shown.replace('%', '%%')})"


class DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: sets the same value and says which flag replaces it."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warn(f"{option_string} is deprecated; use {self.replacement}")
        setattr(namespace, self.dest, values)


def key_value(text: str) -> tuple[str, Any]:
    """``"top_k=256"`` -> ``("top_k", 256)``: the value read as JSON, or kept as text when it is not JSON."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def config_from_args(config_class: type, args: argparse.Namespace | Mapping):
    """``config_class`` from the parsed flags; a field absent from ``args`` takes its default."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return config_class(**{field.name: values[field.name] for field in dataclasses.fields(config_class)
                           if field.name in values})


def _accepts_none(annotation) -> bool:
    return _origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


# --------------------------------------------------------------------------- files


def read_config_file(path: str | Path) -> dict:
    """A YAML or JSON config as flat ``{option: value}``: the sections of a written config are merged, its
    ``environment`` section (what ran it, for the record) is left out."""
    path = Path(path)
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError("--config", f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError("--config", f"{path} must hold a mapping of option: value")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == ENVIRONMENT:
            continue
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def is_run_record(path: str | Path) -> bool:
    """Whether a config file is one a run wrote (it has the ``environment`` section of the record)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ENVIRONMENT in data


def write_config_file(path: str | Path, sections: Mapping[str, Any]) -> Path:
    """Write ``sections`` atomically as YAML (``.json``: JSON), in the order given."""
    path = Path(path)
    data = plain(dict(sections))
    if path.suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    return write_atomic(path, lambda temporary: Path(temporary).write_text(text))


def recipe_names() -> list[str]:
    return sorted(Path(item.name).stem for item in importlib.resources.files(RECIPES).iterdir()
                  if item.name.endswith(".yaml"))


def recipe_path(name: str) -> Path:
    """The shipped config file of a named recipe (``rlprompt_interp/recipes/NAME.yaml``)."""
    path = Path(str(importlib.resources.files(RECIPES).joinpath(f"{name}.yaml")))
    if not path.is_file():
        raise ConfigError("--recipe", f"has no recipe {name!r}; choose one of {recipe_names()}")
    return path


@dataclasses.dataclass
class Section:
    """A named group of flags: one section of a written config."""

    group: Any


class ConfigFileParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that also takes ``--config FILE`` and ``--recipe NAME`` (when
    :meth:`add_config_file_arguments` added them): the file's values become the defaults, so a flag
    given on the command line, before or after ``--config``, overrides the file (``TrlParser``'s rule).

    Its flags come in named sections (:meth:`add_section`); :meth:`section_values` gives the parsed
    values section by section, the shape of the config file a run writes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sections: dict[str, Section] = {}
        # the parser that reads a given command line: this one, or one built for what the line chooses
        # (``train --agent pez`` gets PEZ's flags)
        self.choose: typing.Callable[[list[str]], "ConfigFileParser"] | None = None

    def add_section(self, key: str, title: str):
        """The argument group of section ``key`` (made on first use)."""
        if key not in self.sections:
            self.sections[key] = Section(self.add_argument_group(title))
        return self.sections[key].group

    def section_values(self, args: argparse.Namespace, *, leave_out: typing.Collection[str] = ()) -> dict[str, dict]:
        """``{section: {option: value}}`` without the ``leave_out`` options."""
        values = vars(args)
        result = {}
        for key, section in self.sections.items():
            dests = dict.fromkeys(action.dest for action in section.group._group_actions)
            chosen = {dest: values[dest] for dest in dests if dest in values and dest not in leave_out}
            if chosen:
                result.setdefault(key, {}).update(chosen)
        return result

    def add_config_file_arguments(self, group=None, *, recipes: bool = True) -> None:
        group = group or self
        group.add_argument("--config", metavar="FILE",
                           help="read options from a YAML or JSON file (e.g. a run's OUTPUT/config.yaml); flags "
                                "given on the command line override it")
        if recipes:
            group.add_argument("--recipe", metavar="NAME",
                               help=f"a config file shipped with the package, by name; flags override it "
                                    f"(recipes: {', '.join(recipe_names())})")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        chosen = self.choose(args) if self.choose is not None else self
        if chosen is not self:
            return chosen.parse_known_args(args, namespace)
        if any(action.dest == "config" for action in self._actions):
            self._apply_config_files(args)
        return super().parse_known_args(args, namespace)

    def _apply_config_files(self, args: list[str]) -> None:
        scan = argparse.ArgumentParser(add_help=False)
        scan.add_argument("--config")
        scan.add_argument("--recipe")
        given, _ = scan.parse_known_args(args)
        try:
            values = {}
            if given.recipe:
                values.update(read_config_file(recipe_path(given.recipe)))
            if given.config:
                values.update(read_config_file(given.config))
        except (ConfigError, OSError) as error:
            self.error(str(error))
        actions = {action.dest: action for action in self._actions}
        source = given.config or given.recipe
        old_names = {option[2:].replace("-", "_"): action.dest for action in self._actions
                     if isinstance(action, DeprecatedFlag) for option in action.option_strings}
        for old in sorted(set(values) & set(old_names) - set(actions)):  # an older spelling, as on the command line
            warn(f"{old} in {source} is deprecated; use {old_names[old]}")
            values.setdefault(old_names[old], values.pop(old))
        unknown = sorted(set(values) - set(actions))
        if unknown and given.config and is_run_record(given.config):
            # a run's config.yaml from an older version, which recorded options this command does not read
            warn(f"{source} holds options that are not read here, left out: {unknown}")
            values = {dest: value for dest, value in values.items() if dest in actions}
        elif unknown:
            self.error(f"--config: unknown options {unknown} in {source}")
        for dest, value in values.items():
            values[dest] = _convert(actions[dest], value)
            actions[dest].required = False  # the file gives it
        self.set_defaults(**values)


def _convert(action: argparse.Action, value: Any) -> Any:
    """A file's value through the flag's type, as if typed on the command line (YAML reads ``1e-3`` as text)."""
    if action.type is key_value and isinstance(value, dict):
        return list(value.items())  # a mapping in a file: the pairs repeated flags would give
    if action.type is None or value is None:
        return value
    if isinstance(value, list):
        return [action.type(item) if isinstance(item, str) else item for item in value]
    return action.type(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- options every agent shares


@dataclasses.dataclass
class TaskModelConfig(Config):
    """Which task language model a run loads, and in what precision."""

    model: str = option("auto", "task LM (hub id, folder or embedded name; a masked LM such as roberta-large "
                                "reads the class at the template's {mask})")
    dtype: str = option("auto", f"dtype of the frozen models during training; {AUTO_DTYPE_HELP}; or float32, "
                                "bfloat16, float16 (a run resumes only in its own dtype)", choices=DTYPE_CHOICES)

    def resolved(self, task=None) -> "TaskModelConfig":
        from .models import resolve_dtype_name, resolve_spec

        return dataclasses.replace(self, model=resolve_spec(self.model, "task"), dtype=resolve_dtype_name(self.dtype))


@dataclasses.dataclass
class ModelConfig(TaskModelConfig):
    """The task LM, and the LM that scores a prompt's perplexity."""

    scorer: str = option("auto", "perplexity scorer LM (gpt2-xl online, smollm2-135m offline)")

    def resolved(self, task=None) -> "ModelConfig":
        from .models import resolve_spec

        return dataclasses.replace(super().resolved(task), scorer=resolve_spec(self.scorer, "scorer"))


@dataclasses.dataclass
class DevConfig(Config):
    """How much of the dev split the best prompt is chosen on."""

    dev_limit: int | None = option(None, "score only N dev examples, a fixed random subset stratified by label "
                                         "(when omitted: all of them)", at_least=1)


# what every agent's fit() takes; train declares these flags before any agent's own
FIT_OPTIONS = ("prompt_length", "steps", "seed")


@dataclasses.dataclass
class RunConfig(Config):
    """How long a run trains and from which seed (``FIT_OPTIONS``), its time budget and its progress bars."""

    prompt_length: int = option(5, "prompt tokens (wayward: 0 takes its target text's length)", at_least=0)
    steps: int | None = option(None, "training steps (when omitted: rlprompt 100 within 7 minutes, or until "
                                     "--max-minutes when that is given; soft-prompt, pez, wayward, grpo and rloo "
                                     "1000 steps)", at_least=1,
                        why="a run of no steps learns nothing (evaluate a prompt with `rlprompt-interp eval`)")
    seed: int = option(0, "seed of the run's initialisation and sampling")
    max_minutes: float | None = option(None, "stop training after this many minutes, summed over resumes (when "
                                             "omitted: no limit; rlprompt without --steps: 7, with 100 steps)", above=0,
                                       why="the training time budget")
    quiet: bool = option(False, "no progress bars")

    @property
    def max_seconds(self) -> float | None:
        return None if self.max_minutes is None else self.max_minutes * 60
