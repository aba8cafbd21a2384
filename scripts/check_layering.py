#!/usr/bin/env python3
"""Checks that the folders of include/hepgnn keep their layering (see docs/layering.md).

Rules (the name in brackets is the one the allowlist uses):
  [include]    a header includes only headers of its own folder or of folders before it in LAYERS;
  [omp]        OpenMP (`#pragma omp`, <omp.h>, omp_* calls) only in core/parallel.hpp and simd/;
  [intrinsics] intrinsics (_mm*_ calls, __m128/__m256/__m512/__mmask types, <*intrin.h>) and xsimd
               (`xsimd::`, `#include <xsimd...>`) only in simd/;
  [detail]     a `detail::` (or `*_detail::`) name only in the folder that declares it;
  [length]     a header has at most MAX_LINES lines;
  [optional]   the macros of the optional components (HEPGNN_HAVE_ZLIB, HEPGNN_HAVE_FASTJET, ...) only in the headers
               listed in OPTIONAL_HOMES, where they add or leave out whole declarations: a macro that changed a
               function's body would give translation units with and without the component different definitions
               of one inline function (an ODR violation: the linker keeps one for the whole program).

Known exceptions are listed in scripts/layering_allowlist.txt, one `<file> <rule>  # reason` a line (file relative
to include/hepgnn). The check fails on a violation that is not listed and on a listed entry that no longer occurs,
so the list only shrinks. Standard library only; runs in well under a second.

Usage: scripts/check_layering.py [--root DIR] [--allowlist FILE] [--no-allowlist]
"""

from __future__ import annotations

import argparse
import posixpath
import re
import sys
from collections import defaultdict
from pathlib import Path

LAYERS = ["core", "simd", "graph", "nn", "loss", "optim", "train", "quant", "dist", "data", "io", "metrics",
          "physics", "models"]
RANK = {name: i for i, name in enumerate(LAYERS)}
MAX_LINES = 600
OMP_HOMES = ("core/parallel.hpp",)  # plus all of simd/
OPTIONAL_HOMES = ("io/codec.hpp", "io/fastjet_cluster.hpp", "metrics/jets.hpp")
RULES = ("include", "omp", "intrinsics", "detail", "length", "optional")

ADVICE = {
    "include": "move the needed declarations down (or this code up) so that includes point only to earlier folders",
    "omp": "use core/parallel.hpp's helpers (parallel_for, parallel_for_with, ...) instead of OpenMP",
    "intrinsics": "move the kernel into simd/ and call it by name",
    "detail": "give it a public name in the defining folder (or move it to the folder that uses it)",
    "length": f"split the header (at most {MAX_LINES} lines)",
    "optional": "put the optional code in its own header (included, or declaring its functions, only with the "
                "component) and register it at run time as io/codec.hpp does",
}


# ----------------------------------------------------------------------------------------------------------------
# source text without comments (and, for identifier checks, without string and character literals)

def strip_source(text: str) -> tuple[str, str]:
    """Returns (code without comments, code without comments and literals); newlines are kept, so line numbers
    match the file."""
    no_comments, no_literals = [], []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            no_comments.append(" " * (j - i)); no_literals.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank = "".join(ch if ch == "\n" else " " for ch in text[i:j])
            no_comments.append(blank); no_literals.append(blank)
            i = j
        elif c == "R" and nxt == '"' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                no_comments.append(c); no_literals.append(c); i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            lit = text[i:j]
            no_comments.append(lit); no_literals.append("".join(ch if ch == "\n" else " " for ch in lit))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator (1'000'000)
                no_comments.append(c); no_literals.append(c); i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            no_comments.append(text[i:j]); no_literals.append(c + " " * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            no_comments.append(c); no_literals.append(c)
            i += 1
    return "".join(no_comments), "".join(no_literals)


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# ----------------------------------------------------------------------------------------------------------------
# detail namespaces: who declares what

DETAIL_NS = re.compile(r"^(?:\w+_)?detail$")
IDENT = re.compile(r"[A-Za-z_]\w*")
KEYWORDS = {"inline", "constexpr", "static", "const", "consteval", "constinit", "extern", "template", "typename",
            "class", "struct", "union", "enum", "using", "void", "auto", "bool", "int", "long", "float", "double",
            "char", "unsigned", "signed", "short", "operator", "noexcept", "return", "friend", "virtual",
            "explicit", "thread_local", "mutable", "volatile", "requires", "decltype", "static_assert"}


def skip_angles(s: str, i: int) -> int:
    """s[i] == '<': returns the index after the matching '>' (template parameter lists; no shifts inside)."""
    depth = 0
    while i < len(s):
        if s[i] == "<":
            depth += 1
        elif s[i] == ">":
            depth -= 1
            if depth == 0:
                return i + 1
        elif s[i] in "({":
            close = ")" if s[i] == "(" else "}"
            k = s.find(close, i)
            i = k if k >= 0 else len(s)
        i += 1
    return i


def declared_name(head: str) -> str | None:
    """The name one declaration at namespace scope introduces (head: its text up to '{' or ';')."""
    s = head.strip()
    while True:  # template <...> prefixes
        m = re.match(r"template\s*<", s)
        if not m:
            break
        s = s[skip_angles(s, m.end() - 1):].strip()
    s = re.sub(r"^requires\b[^;{]*?(?=\b(?:inline|constexpr|static|struct|class|auto|void|using|[A-Za-z_]\w*\s))",
               "", s)
    s = re.sub(r"\[\[.*?\]\]|\balignas\s*\([^)]*\)", " ", s).strip()  # attributes
    if not s or s.startswith(("static_assert", "#")):
        return None
    m = re.match(r"using\s+(\w+)\s*=", s)
    if m:
        return m.group(1)
    if s.startswith("using"):
        return None
    m = re.match(r"(?:enum\s+(?:class|struct)\s+|enum\s+|struct\s+|class\s+|union\s+)(?:alignas\([^)]*\)\s*)?(\w+)", s)
    if m:
        return m.group(1)
    # function or variable: the identifier before the first '(' / '=' / '{' / '[' outside <...>
    depth = 0
    last = None
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in "(=[{":
            break
        elif ch.isalpha() or ch == "_":
            m = IDENT.match(s, i)
            word = m.group(0)
            if word not in KEYWORDS:
                last = word
            if word == "operator":
                return None
            i = m.end()
            continue
        i += 1
    return last


class Detail:
    """Declarations in detail namespaces: (namespace name, member) -> folders, and namespace aliases."""

    def __init__(self):
        self.members: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.qualified: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (outer ns, detail ns, name)

    def add(self, outer: str, ns: str, name: str, folder: str):
        self.members[(ns, name)].add(folder)
        self.qualified[(outer, ns, name)].add(folder)

    def folders(self, qual: list[str], ns: str, name: str) -> set[str]:
        outer = [q for q in qual if q not in ("", "hepgnn")]
        if outer:
            return set(self.qualified.get((outer[-1], ns, name), set()))
        return set(self.members.get((ns, name), set()))


def collect_details(code: str, folder: str, detail: Detail):
    """Walks braces of `code` (no comments, no literals), keeping a stack of scopes; records the names declared
    directly inside namespaces called detail or *_detail."""
    stack: list[tuple[str, list[str]]] = []  # ("ns", path) or ("other", path)
    start = 0  # start of the current declaration head
    i, n = 0, len(code)
    path: list[str] = []
    while i < n:
        ch = code[i]
        if ch == "#":  # preprocessor line
            j = code.find("\n", i)
            j = n if j < 0 else j
            while code[j - 1] == "\\" and j < n:
                k = code.find("\n", j + 1)
                j = n if k < 0 else k
            i = j
            start = i
            continue
        if ch == "{":
            head = code[start:i]
            m = re.search(r"\bnamespace\s+([\w:]*)\s*$", head)
            if m and not re.search(r"=", head):
                names = [p for p in m.group(1).split("::") if p] or ["(anon)"]
                if path and DETAIL_NS.match(path[-1]):  # nested namespace: a member of the detail namespace
                    detail.add(path[-2] if len(path) > 1 else "", path[-1], names[0], folder)
                for k, nm in enumerate(names):
                    if DETAIL_NS.match(nm) and k + 1 < len(names):
                        outer = (path + names[:k])[-1] if path + names[:k] else ""
                        detail.add(outer, nm, names[k + 1], folder)
                stack.append(("ns", names))
                path = path + names
            else:
                if path and DETAIL_NS.match(path[-1]) and stack and stack[-1][0] == "ns":
                    name = declared_name(head)
                    if name:
                        detail.add(path[-2] if len(path) > 1 else "", path[-1], name, folder)
                stack.append(("other", []))
                # skip the whole body of a non-namespace scope
                depth = 1
                i += 1
                while i < n and depth:
                    if code[i] == "{":
                        depth += 1
                    elif code[i] == "}":
                        depth -= 1
                    i += 1
                stack.pop()
                start = i
                continue
            start = i + 1
        elif ch == "}":
            if stack:
                kind, names = stack.pop()
                if kind == "ns":
                    path = path[: len(path) - len(names)]
            start = i + 1
        elif ch == ";":
            head = code[start:i]
            if path and DETAIL_NS.match(path[-1]) and stack and stack[-1][0] == "ns":
                m = re.match(r"\s*namespace\s+(\w+)\s*=", head)
                name = m.group(1) if m else declared_name(head)
                if name:
                    detail.add(path[-2] if len(path) > 1 else "", path[-1], name, folder)
            start = i + 1
        elif ch == "(":  # skip parenthesised text (lambdas in default arguments, initialisers)
            depth = 1
            i += 1
            while i < n and depth:
                if code[i] == "(":
                    depth += 1
                elif code[i] == ")":
                    depth -= 1
                i += 1
            continue
        i += 1


# ----------------------------------------------------------------------------------------------------------------

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.M)
PRAGMA_OMP = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+omp\b", re.M)
OMP_CALL = re.compile(r"(?<![\w:])omp_\w+\s*\(")
INTRIN_CALL = re.compile(r"(?<!\w)_mm(?:256|512)?_\w+")
INTRIN_TYPE = re.compile(r"(?<!\w)__m(?:128|256|512)\w*|(?<!\w)__mmask\d+")
INTRIN_HEADER = re.compile(r"^\w*intrin\.h$|^arm_neon\.h$|^arm_sve\.h$")
XSIMD = re.compile(r"(?<!\w)xsimd::")
DETAIL_USE = re.compile(r"((?:\w+::)*)(\w*detail)::(\w+)")
OPTIONAL_MACRO = re.compile(r"(?<!\w)HEPGNN_HAVE_\w+")
ALIAS = re.compile(r"\bnamespace\s+(\w+)\s*=\s*((?:\w+::)*\w*detail)\s*;")


class Violation:
    def __init__(self, rel: str, line: int, rule: str, what: str):
        self.rel, self.line, self.rule, self.what = rel, line, rule, what

    def __str__(self):
        return f"include/hepgnn/{self.rel}:{self.line}: [{self.rule}] {self.what}; fix: {ADVICE[self.rule]}"


def folder_of(rel: str) -> str | None:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else None


def check(root: Path) -> list[Violation]:
    files = sorted(p for p in root.rglob("*") if p.suffix in (".hpp", ".h", ".ipp", ".inl") and p.is_file())
    sources = {}
    for p in files:
        rel = p.relative_to(root).as_posix()
        text = p.read_text(encoding="utf-8", errors="replace")
        sources[rel] = (text, *strip_source(text))
    out: list[Violation] = []

    detail = Detail()
    for rel, (_, _, code) in sources.items():
        folder = folder_of(rel)
        if folder:
            collect_details(code, folder, detail)

    for rel, (text, no_comments, code) in sources.items():
        folder = folder_of(rel)
        if folder is None:  # hepgnn.hpp (everything) and version.hpp (nothing)
            continue
        if folder not in RANK:
            out.append(Violation(rel, 1, "include", f"folder '{folder}' is not in the layer order {LAYERS}"))
            continue
        in_simd = folder == "simd"

        # (e) length
        nlines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if nlines > MAX_LINES:
            out.append(Violation(rel, MAX_LINES + 1, "length", f"{nlines} lines"))

        # (a) includes, (b) <omp.h>, (c) intrinsic headers and xsimd
        for m in INCLUDE.finditer(no_comments):
            target = m.group(2).strip()
            line = line_of(no_comments, m.start())
            if m.group(1) == '"' or target.startswith("hepgnn/"):
                if target.startswith("hepgnn/"):
                    t = target[len("hepgnn/"):]
                else:  # relative to the including header
                    t = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
                    if t.startswith("../"):
                        continue
                tfolder = folder_of(t)
                if tfolder is None:
                    if t != "version.hpp":
                        out.append(Violation(rel, line, "include", f"includes {target} (the umbrella header)"))
                elif tfolder not in RANK:
                    out.append(Violation(rel, line, "include", f"includes {target}: folder '{tfolder}' is not in "
                                                                f"the layer order"))
                elif RANK[tfolder] > RANK[folder]:
                    out.append(Violation(rel, line, "include",
                                         f"{folder}/ includes {target} ({tfolder}/ comes after {folder}/)"))
            else:
                if target == "omp.h" and rel not in OMP_HOMES and not in_simd:
                    out.append(Violation(rel, line, "omp", "includes <omp.h>"))
                if (INTRIN_HEADER.match(target) or target.startswith("xsimd")) and not in_simd:
                    out.append(Violation(rel, line, "intrinsics", f"includes <{target}>"))

        # (b) OpenMP
        if rel not in OMP_HOMES and not in_simd:
            for m in PRAGMA_OMP.finditer(no_comments):
                out.append(Violation(rel, line_of(no_comments, m.start()), "omp", "#pragma omp"))
            for m in OMP_CALL.finditer(code):
                out.append(Violation(rel, line_of(code, m.start()), "omp", f"calls {m.group(0).rstrip('( ')}()"))

        # (c) intrinsics and xsimd
        if not in_simd:
            seen = set()
            for rx, what in ((INTRIN_CALL, "intrinsic"), (INTRIN_TYPE, "intrinsic type"), (XSIMD, "uses")):
                for m in rx.finditer(code):
                    line = line_of(code, m.start())
                    if (line, what) in seen:
                        continue
                    seen.add((line, what))
                    out.append(Violation(rel, line, "intrinsics", f"{what} {m.group(0)}"))

        # (f) optional components' macros
        if rel not in OPTIONAL_HOMES:
            for m in OPTIONAL_MACRO.finditer(code):
                out.append(Violation(rel, line_of(code, m.start()), "optional", f"uses {m.group(0)}"))

        # (d) detail names of other folders
        aliases = {a: t.split("::")[-1] for a, t in ALIAS.findall(code)}
        uses = [(m.start(), m.group(1).split("::")[:-1], m.group(2), m.group(3)) for m in DETAIL_USE.finditer(code)]
        for a, ns in aliases.items():
            for m in re.finditer(rf"(?<![\w:])({a})::(\w+)", code):
                uses.append((m.start(), [], ns, m.group(2)))
        reported = set()
        for pos, qual, ns, name in uses:
            owners = detail.folders(qual, ns, name)
            if not owners or folder in owners:
                continue
            line = line_of(code, pos)
            key = (line, ns, name)
            if key in reported:
                continue
            reported.add(key)
            q = "::".join([*qual, ns, name])
            out.append(Violation(rel, line, "detail", f"uses {q}, declared in {'/, '.join(sorted(owners))}/"))
    return out


def read_allowlist(path: Path) -> tuple[dict[tuple[str, str], int], list[str]]:
    entries, errors = {}, []
    if not path.exists():
        return entries, errors
    for k, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in RULES:
            errors.append(f"{path}:{k}: malformed entry '{raw.strip()}' (want '<file> <rule>  # reason', rule one "
                          f"of {', '.join(RULES)})")
            continue
        if "#" not in raw:
            errors.append(f"{path}:{k}: entry '{line}' has no '# reason'")
        entries[(parts[0], parts[1])] = k
    return entries, errors


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=here.parent / "include" / "hepgnn")
    ap.add_argument("--allowlist", type=Path, default=here / "layering_allowlist.txt")
    ap.add_argument("--no-allowlist", action="store_true", help="report every violation")
    args = ap.parse_args(argv)

    if not args.root.is_dir():
        print(f"check_layering: no folder {args.root}", file=sys.stderr)
        return 2
    violations = check(args.root)
    entries, errors = ({}, []) if args.no_allowlist else read_allowlist(args.allowlist)
    used = set()
    failures = list(errors)
    allowed = 0
    for v in sorted(violations, key=lambda v: (v.rel, v.line, v.rule)):
        if (v.rel, v.rule) in entries:
            used.add((v.rel, v.rule))
            allowed += 1
            continue
        failures.append(str(v))
    for (rel, rule), k in sorted(entries.items(), key=lambda e: e[1]):
        if (rel, rule) not in used:
            failures.append(f"{args.allowlist}:{k}: [{rule}] '{rel}' no longer violates this rule; fix: remove the "
                            f"entry from the allowlist")
    for f in failures:
        print(f)
    status = "FAILED" if failures else "ok"
    print(f"check_layering: {status}: {len(failures)} problem(s), {allowed} allowed violation(s) in "
          f"{len(entries)} allowlist entries", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
