"""Reading YAML: syntax errors and duplicate keys with file, line and column. Used by
``config/loader.py``."""

from __future__ import annotations

from typing import Any

import yaml

from mosn_py.errors import ConfigError


class _DuplicateKeys:
    """Loader mixin that records duplicate mapping keys (PyYAML keeps the last silently)."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Checked before SafeLoader flattens ``<<`` merges, whose keys may legally repeat.
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Mark] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                ident = (key_node.tag, key_node.value)
                mark = key_node.start_mark
                if ident in seen:
                    self.duplicates.append(
                        f"{mark.line + 1}:{mark.column + 1}: duplicate key {key_node.value!r}"
                        f" (first at line {seen[ident].line + 1})"
                    )
                else:
                    seen[ident] = mark
        out: dict[Any, Any] = super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        return out


class _StrictLoader(_DuplicateKeys, yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates = []


# libyaml's parser, when PyYAML has it, reads big files ten times faster (the control plane
# re-reads its file on every change). Its error messages differ, so a document it refuses
# is read again by the pure-Python loader, whose messages the docs and tests know.
_CLoader: Any = getattr(yaml, "CSafeLoader", None)
_FastLoader: Any = None
if _CLoader is not None:

    class _FastLoader(_DuplicateKeys, _CLoader):  # type: ignore[no-redef,misc]
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates = []


def _read_yaml(text: str, source: str) -> tuple[object, list[str]]:
    if _FastLoader is not None:
        fast = _FastLoader(text)
        try:
            return fast.get_single_data(), [f"{source}:{d}" for d in fast.duplicates]
        except (yaml.YAMLError, RecursionError, ValueError):
            pass  # diagnosed below
        finally:
            fast.dispose()
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # checks the characters up front
        return loader.get_single_data(), [f"{source}:{d}" for d in loader.duplicates]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or "syntax error"
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"{where}: invalid YAML: {problem}{context}") from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        where = f"{source}:{before.count(chr(10)) + 1}:{exc.position - before.rfind(chr(10))}"
        raise ConfigError(
            f"{where}: invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
