"""Resource limits of portable's parsers and of the checker (DESIGN §8): documented, overridable, enforced early.

A hostile or corrupt file must never make portable recurse until a RecursionError, allocate until a MemoryError or
run for ever. Every reader therefore checks what a file *declares* (sizes, dimensions, nesting, aliases) against
these limits before it reads, expands or allocates anything, and a limit reached is a `LimitError` (a
`PortableError`, exit 1) that names the limit and tells how to raise it.

| limit | default | what it bounds |
|---|---|---|
| `max_document_bytes` | 256 MiB | the size of a PFA (JSON/YAML) document, of an NNEF `graph.nnef`, of `portable.json` |
| `max_depth` | 256 | nesting of JSON/YAML values, PFA expressions and NNEF parentheses/brackets |
| `max_nodes` | 5,000,000 | values in a JSON/YAML document counted as if every YAML alias were expanded |
| `max_yaml_aliases` | 100,000 | alias references (`*name`) in one YAML document |
| `max_pfa_expansion` | 1,000,000 | expressions a PFA action amounts to once its user functions are inlined |
| `max_record_fields` | 10,000 | fields of one PFA record type |
| `max_onnx_loop_ms` | 60,000 | milliseconds one onnxruntime run of a graph with a Loop or Scan may take (its trip count is data) |
| `max_pfa_routine_ms` | 10,000 | milliseconds one PFA begin/action/end routine may run (the spec's `timeout`, imposed; a document's smaller `timeout` option wins) |
| `max_pfa_loop_iterations` | 10,000,000 | iterations of one PFA `while`, `do`-`until` or `for` loop in one routine (a loop that never ends stops the scoring run, like `max_pfa_routine_ms`, instead of failing each record on its own) |
| `max_pfa_value_items` | 10,000,000 | characters, bytes or elements of one string, bytes or array a PFA function builds (`s.repeat`, `s.concat`, `a.concat`, `a.combinations`, ...) |
| `max_pfa_regex_size` | 1,000,000 | copies a PFA regular expression's counted repeats ask for (`a{1000000000}`, nested `((a{1000}){1000}){1000}`): the regex library compiles each copy, about 2 s a million, before any timeout applies |
| `max_nnef_lowering_ms` | 30,000 | milliseconds the `nnef` parser may take (in a child process, with 4 GiB of memory) to expand the fragments a `graph.nnef` defines |
| `max_tensor_bytes` | 4 GiB | the size one NNEF tensor (`.dat` header), archive member or ONNX external-data tensor declares |
| `max_archive_bytes` | 8 GiB | the sum of the sizes an NNEF archive's members, or an ONNX model's external-data tensors, declare |
| `max_archive_members` | 100,000 | members of an NNEF archive, files of an NNEF folder |
| `max_compression_ratio` | 200 | declared size of an archive's members over the archive's size, and the decompressed bytes of a compressed joblib file over its size, above 64 MiB (a gzip bomb) |
| `max_pickle_opcodes` | 10,000,000 | opcodes of one pickle stream that portable reads in Python: the audit's static scan (and the scan that words a failed load's message), and joblib's unpickler (joblib.dump files, compressed pickles); a 64 MiB file of one-byte opcodes is 64 million of them, about 3 us each, while a model's arrays are one opcode each and a 1,000,000-word vocabulary about 3,000,000 (plain pickles load through the C unpickler, whose work the file's size bounds) |
| `max_onnx_nodes` | 1,000,000 | nodes of an ONNX model, subgraphs included and every call of a model-local function counted with the nodes it inlines to (30 functions each calling the previous twice are 2**30 nodes in a 2 KB file: onnx.checker and onnxruntime expand them for ever), counted before either reads the model |
| `max_node_inputs` | 10,000 | inputs of one ONNX node converted to NNEF, counted before nnef-tools reads the model (its graph builder is quadratic in a node's inputs: a `Sum` of 200,000 inputs ran for over 72 minutes) |
| `max_tree_depth` | 4,096 | levels of one tree of an ONNX tree ensemble (`TreeEnsembleClassifier`/`Regressor`, `TreeEnsemble`), counted before onnxruntime reads the model: it builds its trees recursively and crashed (SIGSEGV) on a tree 12,000 deep; a scikit-learn tree converted deeper than this is refused too |
| `max_model_inputs` | 10,000 | named inputs of a model the checker generates rows for (onnxruntime validates a run's feeds in time quadratic in their number: 50,000 inputs took minutes per run) |
| `max_data_columns` | 16,384 | columns of a CSV or Parquet `--data` file, counted from its header or schema before a reader builds them (pandas took 85 s and 0.8 GB for a 300,000-column CSV of three rows; 16,384 is a spreadsheet's width) |
| `max_input_width` | 1,000,000 | values per row of one model input the checker generates (`[N, 2**40]` is refused) |
| `max_samples` | 10,000,000 | `samples=` / `--samples` of a check |
| `max_check_values` | 200,000,000 | generated values of a check (`samples` x the values per row of all inputs) |
| `max_process_bytes` | 80% of the machine's memory (at least 1 GiB) | address space of a `portable` command (`RLIMIT_AS`, set by the command line only, never by `import portable`): a graph that asks onnxruntime for more (an `Expand` to 60,000 x 60,000) fails with a clear error instead of the kernel's out-of-memory kill |

Override them for one process with the environment (`PORTABLE_LIMITS="max_depth=1000,max_samples=1e8"`), on the
command line (`portable --limit max_depth=1000 convert ...`), or from Python::

    import portable.limits
    with portable.limits.override(max_depth=1000):
        portable.load("deep.pfa")

This module imports nothing but the standard library and portable's errors, so every reader can use it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import InputError, PortableError

GiB = 1 << 30
MiB = 1 << 20


class LimitError(InputError):
    """A file or a request exceeds one of portable's documented resource limits."""

    def __init__(self, what: str, name: str, *, path: object = None, where: str | None = None) -> None:
        value = getattr(LIMITS, name)
        self.limit, self.what = name, what
        super().__init__(f"{what}, beyond the limit {name}={value:,} (raise it with "
                         f"PORTABLE_LIMITS=\"{name}=...\" or `portable --limit {name}=...` if the file is "
                         f"trusted)", path=path, where=where)


@dataclass
class Limits:
    """The current limits; see the module's documentation for what each one bounds."""

    max_document_bytes: int = 256 * MiB
    max_depth: int = 256
    max_nodes: int = 5_000_000
    max_yaml_aliases: int = 100_000
    max_pfa_expansion: int = 1_000_000
    max_record_fields: int = 10_000
    max_pfa_routine_ms: int = 10_000
    max_pfa_value_items: int = 10_000_000
    max_pfa_regex_size: int = 1_000_000
    max_pfa_loop_iterations: int = 10_000_000
    max_onnx_loop_ms: int = 60_000
    max_nnef_lowering_ms: int = 30_000
    max_tensor_bytes: int = 4 * GiB
    max_archive_bytes: int = 8 * GiB
    max_archive_members: int = 100_000
    max_compression_ratio: int = 200
    max_pickle_opcodes: int = 10_000_000
    max_onnx_nodes: int = 1_000_000
    max_node_inputs: int = 10_000
    max_tree_depth: int = 4_096
    max_model_inputs: int = 10_000
    max_data_columns: int = 16_384
    max_input_width: int = 1_000_000
    max_samples: int = 10_000_000
    max_check_values: int = 200_000_000
    max_process_bytes: int = dataclasses.field(default_factory=lambda: _physical_memory() * 4 // 5)

    def set(self, **values: Any) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in names:
                raise PortableError(f"unknown limit '{key}'; the limits are {', '.join(sorted(names))}")
            setattr(self, key, _as_limit(key, value))


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no cap
        return 1 << 62


def cap_process_memory() -> None:
    """Bound this process's address space to `max_process_bytes` (RLIMIT_AS; only ever lowered, never raised
    above a limit the caller already has). Called by the `portable` command line for its own process, whose
    children (the isolated workers, a local Dask cluster) inherit it; a library never changes its host's limits."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = LIMITS.max_process_bytes
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft == resource.RLIM_INFINITY or soft > want:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        except (ValueError, OSError):
            pass


def _as_limit(name: str, value: Any) -> int:
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number != number:
            raise ValueError
        out = int(number)
        if out != number or out < 1:
            raise ValueError
    except (ValueError, OverflowError, TypeError):
        raise PortableError(f"the limit {name} must be a positive whole number, not {value!r}") from None
    if name == "max_process_bytes" and out < MIN_PROCESS_BYTES:
        raise PortableError(f"the limit {name} must be at least {MIN_PROCESS_BYTES:,} (1 GiB: below that the "
                            f"interpreter cannot even load the libraries a command imports), not {value!r}")
    return out


MIN_PROCESS_BYTES = GiB  # a command's address space below this fails in imports, not in the model's work


LIMITS = Limits()


def parse_assignments(text: str) -> dict[str, str]:
    """`"max_depth=1000, max_samples=1e8"` -> {"max_depth": "1000", "max_samples": "1e8"}."""
    out = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise PortableError(f"a limit is given as NAME=VALUE, not '{part}'")
        out[key.strip()] = value.strip()
    return out


def _from_environment() -> None:
    text = os.environ.get("PORTABLE_LIMITS", "")
    if not text:
        return
    try:
        LIMITS.set(**parse_assignments(text))
    except PortableError as exc:  # importing portable must not fail; say it and keep the defaults
        import warnings

        warnings.warn(f"PORTABLE_LIMITS ignored: {exc}", stacklevel=2)


@contextlib.contextmanager
def override(**values: Any) -> Iterator[Limits]:
    """Change some limits for the duration of a `with` block (this process, all threads)."""
    saved = dataclasses.asdict(LIMITS)
    LIMITS.set(**values)
    try:
        yield LIMITS
    finally:
        LIMITS.set(**saved)


# -- checks the readers call -------------------------------------------------------------------------------

def check_size(size: int, name: str, what: str, *, path: object = None, where: str | None = None) -> None:
    """Refuse `size` (bytes, members, ...) above the limit `name`."""
    if size > getattr(LIMITS, name):
        raise LimitError(f"{what} is {size:,}", name, path=path, where=where)


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular(path: Any, *, folders: bool = False) -> os.stat_result:
    """`path` (its symlinks followed) is a regular file, or a folder when `folders`: never a pipe, a device or a
    socket, which opening would block on (a FIFO waits for a writer) or reading would never end (`/dev/zero`,
    `/dev/urandom`: their size says 0, so no size limit applies)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file (or a symlink to nothing)", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if stat.S_ISREG(st.st_mode) or (folders and stat.S_ISDIR(st.st_mode)):
        return st
    kind = next((name for test, name in _SPECIAL if test(st.st_mode)),
                "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
    raise InputError(f"is {kind}: portable reads only regular files" + (" and folders" if folders else "")
                     + " (a pipe or a device could block or never end)", path=path)


def check_file_size(path: Any, what: str = "the file") -> int:
    """The size of the file at `path`, refused above `max_document_bytes` before anything reads it (and refused
    when it is no regular file: see `check_regular`)."""
    size = check_regular(path).st_size
    check_size(size, "max_document_bytes", f"{what} size in bytes", path=path)
    return size


def check_tree(data: Any, *, path: object = None, what: str = "the document") -> None:
    """Walk parsed JSON/YAML data (dicts, lists, scalars) without recursion: refuse nesting beyond `max_depth` and
    more than `max_nodes` values, every shared (aliased) value counted each time it is used. A value that
    contains itself (a YAML alias to its own anchor) nests without end, so it reaches `max_depth`."""
    max_depth, max_nodes = LIMITS.max_depth, LIMITS.max_nodes
    containers = (dict, list, tuple)
    if not isinstance(data, containers):
        return
    stack = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        items = value.values() if isinstance(value, dict) else value
        count += 1 + (len(value) if isinstance(value, dict) else 0)  # the container and its keys
        if isinstance(value, dict):
            for key in value:
                if type(key) is str and not key.isascii():
                    _unicode_text(key, path, what)
        for child in items:
            if isinstance(child, containers):
                if depth >= max_depth:
                    raise LimitError(f"{what} is nested more than {max_depth} levels deep (or holds a value that "
                                     "contains itself)", "max_depth", path=path)
                stack.append((child, depth + 1))
            else:
                count += 1
                if type(child) is str and not child.isascii():
                    _unicode_text(child, path, what)
        if count > max_nodes:
            raise LimitError(f"{what} holds (YAML aliases expanded) more than {max_nodes:,} values", "max_nodes",
                             path=path)


def _unicode_text(text: str, path: object, what: str) -> None:
    """Refuse a string that is not Unicode text: a lone surrogate (JSON's `"\\ud800"` escape decodes to one)
    cannot be printed, written to an ONNX file or compared as UTF-8, so every later step would fail on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} holds text that is not valid Unicode: {text[:40]!r} has a lone surrogate, "
                         f"{text[exc.start]!r}, at character {exc.start} (a \\u escape of half a UTF-16 pair)",
                         path=path) from None


# -- JSON and YAML ---------------------------------------------------------------------------------------------

def load_json(text: str | bytes, *, path: object = None, what: str = "the document", walk: bool = True) -> Any:
    """`json.loads` within the limits: size first, then depth (a RecursionError from the parser becomes the
    `max_depth` limit), then (unless `walk` is False, for a caller that walks later) `check_tree`."""
    import json

    check_size(len(text), "max_document_bytes", f"{what} size in bytes", path=path)
    try:
        data = json.loads(text)
    except RecursionError:
        raise LimitError(f"{what} is nested deeper than Python's JSON parser can follow", "max_depth",
                         path=path) from None
    if walk:
        check_tree(data, path=path, what=what)
    return data


def yaml_loader(path: object = None) -> type:
    """A `yaml.SafeLoader` subclass that refuses, while composing and before anything is constructed or expanded,
    nesting beyond `max_depth`, more than `max_yaml_aliases` alias references, an alias to an anchor that is still
    open (a value containing itself), and a document whose aliases would expand to more than `max_nodes` values."""
    import yaml
    from yaml.events import AliasEvent
    from yaml.nodes import MappingNode, SequenceNode

    class BoundedLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._depth = 0
            self._aliases = 0
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(AliasEvent):
                event = self.peek_event()
                self._aliases += 1
                if self._aliases > LIMITS.max_yaml_aliases:
                    raise LimitError(f"the YAML document uses more than {LIMITS.max_yaml_aliases:,} aliases",
                                     "max_yaml_aliases", path=path, where=_line(event))
                target = self.anchors.get(event.anchor)
                if target is not None and id(target) not in self._sizes:
                    raise LimitError(f"the YAML alias *{event.anchor} refers to its own anchor (a value that "
                                     "contains itself)", "max_nodes", path=path, where=_line(event))
            self._depth += 1
            if self._depth > LIMITS.max_depth:
                raise LimitError(f"the YAML document is nested more than {LIMITS.max_depth} levels deep",
                                 "max_depth", path=path, where=_line(self.peek_event()))
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            key = id(node)
            if key not in self._sizes:
                size = 1
                if isinstance(node, SequenceNode):
                    size += sum(self._sizes.get(id(c), 1) for c in node.value)
                elif isinstance(node, MappingNode):
                    size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
                if size > LIMITS.max_nodes:
                    raise LimitError(f"the YAML document's aliases expand to more than {LIMITS.max_nodes:,} "
                                     "values", "max_nodes", path=path, where=_line(node))
                self._sizes[key] = size
            return node

    return BoundedLoader


def _line(item: Any) -> str | None:
    mark = getattr(item, "start_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None


def load_yaml(text: str, *, path: object = None, what: str = "the document", walk: bool = True) -> Any:
    """`yaml.safe_load` within the limits (see `yaml_loader`); YAMLError propagates for the caller to word."""
    import yaml

    check_size(len(text), "max_document_bytes", f"{what} size in bytes", path=path)
    loader = yaml_loader(path)(text)
    try:
        data = loader.get_single_data()
    except RecursionError:
        raise LimitError(f"{what} is nested deeper than the YAML parser can follow", "max_depth",
                         path=path) from None
    finally:
        loader.dispose()
    if walk:
        check_tree(data, path=path, what=what)
    return data


# -- PFA ------------------------------------------------------------------------------------------------------

def check_pfa_expansion(data: dict[str, Any], *, path: object = None) -> None:
    """Refuse a PFA document whose action, once every user function is inlined, exceeds `max_pfa_expansion`
    expressions (40 functions each calling the previous one twice amount to 2**40 expressions).

    portable's engine evaluates a user function's body at each call site, so the work of one batch is the
    action's expanded size. It is computed here from the call graph, without expanding anything; a cycle of
    calls (recursion) is left for the engine to refuse."""
    fcns = data.get("fcns") if isinstance(data, dict) else None
    fcns = fcns if isinstance(fcns, dict) else {}
    own: dict[str, tuple[int, dict[str, int]]] = {}
    for name, spec in fcns.items():
        body = spec.get("do") if isinstance(spec, dict) else None
        own[str(name)] = _count_calls(body)
    limit = LIMITS.max_pfa_expansion
    expanded: dict[str, int] = {}
    state: dict[str, int] = {}  # 1 = being computed, 2 = done

    def size_of(start: str) -> int:
        # iterative depth-first post-order over the call graph
        stack: list[tuple[str, Iterator[tuple[str, int]]]] = [(start, iter(own[start][1].items()))]
        state[start] = 1
        while stack:
            name, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                nodes, calls = own[name]
                total = nodes + sum(expanded.get(c, 0) * k for c, k in calls.items())
                expanded[name] = min(total, limit + 1)
                state[name] = 2
                continue
            callee = nxt[0]
            if callee not in own or state.get(callee) == 2:
                continue
            if state.get(callee) == 1:
                expanded.setdefault(callee, 0)  # recursion: the engine refuses it when it runs
                continue
            state[callee] = 1
            stack.append((callee, iter(own[callee][1].items())))
        return expanded[start]

    for name in own:
        if state.get(name) != 2:
            size_of(name)
        if expanded[name] > limit:
            raise LimitError(f"the user function u.{name} amounts to more than {limit:,} expressions once the "
                             "functions it calls are inlined", "max_pfa_expansion", path=path,
                             where=f"fcns.{name}")
    nodes, calls = _count_calls(data.get("action") if isinstance(data, dict) else None)
    total = nodes + sum(expanded.get(c, 0) * k for c, k in calls.items())
    if total > limit:
        raise LimitError(f"the action amounts to {total:,} expressions once user functions are inlined",
                         "max_pfa_expansion", path=path, where="action")


def _count_calls(expr: Any) -> tuple[int, dict[str, int]]:
    """Values in `expr` and how many times it names each user function (`{"u.f": ...}` or `{"fcn": "u.f"}`)."""
    nodes = 0
    calls: dict[str, int] = {}
    stack = [expr]
    while stack:
        e = stack.pop()
        nodes += 1
        if isinstance(e, dict):
            for k, v in e.items():
                if isinstance(k, str) and k.startswith("u."):
                    calls[k[2:]] = calls.get(k[2:], 0) + 1
                elif k == "fcn" and isinstance(v, str) and v.startswith("u."):
                    calls[v[2:]] = calls.get(v[2:], 0) + 1
                stack.append(v)
        elif isinstance(e, list):
            stack.extend(e)
    return nodes, calls


# -- NNEF -----------------------------------------------------------------------------------------------------

def check_nesting(text: str, *, path: object = None, what: str = "graph.nnef") -> None:
    """Refuse text whose parentheses/brackets/braces nest deeper than `max_depth` (outside strings and `#`
    comments), before a recursive parser (the `nnef` C++ parser) sees it."""
    import re

    limit = LIMITS.max_depth
    depth = 0
    line = 1
    quote = ""
    comment = False
    for m in re.finditer(r"[()\[\]{}\"'#\n\\]", text):
        c = m.group()
        if c == "\n":
            line += 1
            comment = False
            continue
        if comment:
            continue
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "\"'":
            quote = c
        elif c == "#":
            comment = True
        elif c in "([{":
            depth += 1
            if depth > limit:
                raise LimitError(f"{what} nests brackets more than {limit} levels deep", "max_depth", path=path,
                                 where=f"line {line}")
        elif c in ")]}":
            depth = max(depth - 1, 0)


NNEF_BITS = (1, 8, 16, 32, 64)


def check_nnef_tensor_header(data: bytes, *, path: object = None, where: str | None = None) -> None:
    """Check an NNEF `.dat` header (128 bytes: magic, version, data length, rank, 8 extents, bits per item) against
    the bytes that follow it and against `max_tensor_bytes`, before anything allocates the declared tensor."""
    import struct

    if len(data) < 128:
        raise InputError(f"the tensor file has {len(data)} bytes; an NNEF tensor header alone has 128", path=path,
                         where=where)
    if data[:2] != b"\x4e\xef":
        raise InputError("not an NNEF tensor file (bad magic number)", path=path, where=where)
    length, rank = struct.unpack_from("<II", data, 4)
    extents = struct.unpack_from("<8I", data, 12)
    bits, = struct.unpack_from("<I", data, 44)
    if rank > 8:
        raise InputError(f"the tensor header declares rank {rank}; NNEF allows at most 8", path=path, where=where)
    if bits not in NNEF_BITS:
        raise InputError(f"the tensor header declares {bits} bits per item; NNEF uses {NNEF_BITS}", path=path,
                         where=where)
    count = 1
    for d in extents[:rank]:
        count *= d
    nbytes = (count + 7) // 8 if bits == 1 else count * bits // 8
    shape = list(extents[:rank])
    check_size(nbytes, "max_tensor_bytes", f"the tensor of shape {shape} ({bits}-bit) declares a size in bytes "
               "that", path=path, where=where)
    if length != nbytes or len(data) - 128 != length:
        raise InputError(f"the tensor header declares shape {shape} at {bits} bits ({nbytes:,} bytes) and a data "
                         f"length of {length:,} bytes; the file holds {len(data) - 128:,} bytes of data",
                         path=path, where=where)


def check_zip_members(members: list[Any], *, path: object = None, compressed_size: int | None = None) -> None:
    """The members of a zip archive (a skops file), before any is decompressed: at most `max_archive_members`, none
    declaring more than `max_tensor_bytes`, at most `max_archive_bytes` in all, and (given the archive's
    `compressed_size`) at most `max_compression_ratio` times it beyond 64 MiB. zipfile never reads more than a
    member declares, so the declared sizes bound what reading them costs."""
    check_size(len(members), "max_archive_members", "the number of archive members", path=path)
    ratio_cap = None if compressed_size is None else max(64 * MiB, LIMITS.max_compression_ratio * compressed_size)
    total = 0
    seen: set[str] = set()
    for member in members:
        if member.filename in seen:  # Python's zipfile reads the last one, other readers the first
            raise InputError(f"the archive holds two members named '{member.filename[:100]}': which one counts "
                             "depends on the reader (a file can show one schema to a scanner and load another), "
                             "so portable reads neither", path=path)
        seen.add(member.filename)
        check_size(member.file_size, "max_tensor_bytes",
                   f"the archive member '{member.filename}' declares a size in bytes that", path=path)
        total += member.file_size
    check_size(total, "max_archive_bytes", "the archive's members declare a total size in bytes that", path=path)
    if ratio_cap is not None and total > ratio_cap:
        raise LimitError(f"the archive's members declare {total:,} bytes from a {compressed_size:,}-byte archive "
                         f"(more than {LIMITS.max_compression_ratio} times its size: a decompression bomb)",
                         "max_compression_ratio", path=path)


def read_tar_members(tar: Any, *, path: object = None, compressed_size: int | None = None) -> Iterator[
        tuple[Any, bytes]]:
    """The regular files of an open `tarfile`, with their bytes, refusing before reading anything large: links
    and symlinks, GNU sparse members, devices and FIFOs, more than `max_archive_members` members, a member
    declaring more than `max_tensor_bytes` or members declaring more than `max_archive_bytes` in all, and (given
    the archive's `compressed_size`) members declaring more than `max_compression_ratio` times it beyond 64 MiB."""
    total = 0
    ratio_cap = None if compressed_size is None else max(64 * MiB, LIMITS.max_compression_ratio * compressed_size)
    for count, member in enumerate(tar, start=1):
        check_size(count, "max_archive_members", "the number of archive members", path=path)
        name = member.name
        if member.issym() or member.islnk():
            raise InputError(f"the archive member '{name}' is a link (to '{member.linkname}'); an NNEF archive "
                             "holds regular files only", path=path)
        if member.issparse():
            raise InputError(f"the archive member '{name}' is a GNU sparse file (declaring {member.size:,} "
                             "bytes); an NNEF archive holds regular files only", path=path)
        if member.isdir():
            continue
        if not member.isfile():
            raise InputError(f"the archive member '{name}' is not a regular file (a device or FIFO)", path=path)
        check_size(member.size, "max_tensor_bytes", f"the archive member '{name}' declares a size in bytes that",
                   path=path)
        total += member.size
        check_size(total, "max_archive_bytes", "the archive's members declare a total size in bytes that",
                   path=path)
        if ratio_cap is not None and total > ratio_cap:
            raise LimitError(f"the archive's members declare {total:,} bytes from a {compressed_size:,}-byte "
                             f"archive (more than {LIMITS.max_compression_ratio} times its size: a decompression "
                             "bomb)", "max_compression_ratio", path=path)
        stream = tar.extractfile(member)
        data = stream.read(member.size + 1) if stream is not None else b""
        if len(data) != member.size:
            raise InputError(f"the archive member '{name}' holds {len(data):,} bytes, not the {member.size:,} it "
                             "declares", path=path)
        yield member, data


def read_folder_files(folder: Any, *, skip_hidden: bool = True) -> dict[str, bytes]:
    """The files below `folder` (relative POSIX name -> bytes), refusing a symlink that leads out of the folder,
    more than `max_archive_members` files, a file above `max_tensor_bytes` or more than `max_archive_bytes` in
    all; sizes are checked before reading."""
    from pathlib import Path

    root = Path(folder)
    real_root = root.resolve()
    files: dict[str, bytes] = {}
    total = 0
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if skip_hidden and any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_symlink() or any(q.is_symlink() for q in list(p.parents)[: len(rel.parts) - 1]):
            target = p.resolve()
            if not target.is_relative_to(real_root):
                raise InputError(f"'{rel.as_posix()}' is a symlink to '{target}', outside the model folder; "
                                 "portable reads a model's own files only", path=root)
        if not p.is_file():
            if os.path.exists(p) and not p.is_dir():  # a FIFO or a device among the model's files: say so,
                check_regular(p)                      # rather than that the file is missing
            continue
        check_size(len(files) + 1, "max_archive_members", "the number of files", path=root)
        size = p.stat().st_size
        check_size(size, "max_tensor_bytes", f"the file '{rel.as_posix()}' size in bytes", path=root)
        total += size
        check_size(total, "max_archive_bytes", "the folder's total size in bytes", path=root)
        files[rel.as_posix()] = p.read_bytes()
    return files


# -- the checker ----------------------------------------------------------------------------------------------

def check_model_inputs(count: int) -> None:
    """Refuse to generate rows for more named inputs than `max_model_inputs`."""
    check_size(count, "max_model_inputs", "the number of the model's inputs")


def check_data_columns(path: Any) -> None:
    """Refuse a `.csv` or `.parquet` data file of more columns than `max_data_columns`, counted from the CSV's
    header line (read from a bounded prefix: a header longer than the limit allows is refused unread) or the
    Parquet footer's schema, before pandas or pyarrow builds a column object for each."""
    import csv
    import io
    from pathlib import Path

    p = Path(path)
    limit = LIMITS.max_data_columns
    suffix = p.suffix.lower()
    if suffix == ".csv":
        budget = 64 * 1024 + limit * 256  # generous for `limit` columns of long names
        with open(p, "rb") as f:
            head = f.read(budget + 1)
        text = head[:budget].decode("utf-8", errors="replace")
        try:
            first = next(csv.reader(io.StringIO(text, newline="")), [])
        except csv.Error:
            return  # the reader names what is wrong with the file
        if len(first) > limit:
            raise LimitError(f"the data file's header has {len(first):,} columns", "max_data_columns", path=p)
        if len(head) > budget and "\n" not in text and "\r" not in text:
            raise LimitError(f"the data file's first line is longer than {budget:,} bytes", "max_data_columns",
                             path=p)
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            columns = pq.read_metadata(p).num_columns
        except Exception:
            return  # the reader names what is wrong with the file
        if columns > limit:
            raise LimitError(f"the data file's schema has {columns:,} columns", "max_data_columns", path=p)


def check_input_width(name: str, row_shape: tuple[int, ...] | list[int]) -> None:
    """Refuse a model input whose declared per-row size exceeds `max_input_width`, or whose rank (with the row
    dimension) exceeds what numpy can hold, before anything is built."""
    import numpy as np

    most = 64 if int(np.__version__.split(".")[0]) >= 2 else 32  # numpy's NPY_MAXDIMS
    if len(row_shape) + 1 > most:
        raise PortableError(f"input '{name}' declares {len(row_shape) + 1} dimensions; numpy, in which the checker "
                            f"builds its rows, holds arrays of at most {most}")
    width = 1
    for d in row_shape:
        if d < 0:
            raise PortableError(f"input '{name}' declares a negative dimension {list(row_shape)}")
        width *= int(d)
        if width > LIMITS.max_input_width:
            raise LimitError(f"input '{name}' declares {list(row_shape)} values per row", "max_input_width",
                             where=f"input '{name}'")


def check_samples(samples: int, width: int = 1) -> None:
    """Refuse a check of more than `max_samples` rows, or of more than `max_check_values` generated values."""
    check_size(samples, "max_samples", "samples")
    if samples * max(width, 1) > LIMITS.max_check_values:
        raise LimitError(f"samples={samples:,} rows of {width:,} values each make {samples * width:,} values",
                         "max_check_values")


_from_environment()
