"""The language table: what a program needs to see of the host, and how it is compiled and run.

A language is a filesystem view (host paths bound read-only at the same place, on top of the base view of
/usr) plus commands. The program's source is at /code/<source>; a compiled language writes its output under
/out, which the run step then sees read-only. Every path is an absolute host path: the sandbox has no PATH
lookup to be fooled by.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str
    fences: tuple[str, ...]  # info strings of a Markdown code fence that mean this language (lower case)
    source: str  # file name of the program under /code
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    image: tuple[str, ...] = ()  # host paths beyond /usr that the language needs, bound read-only

    @property
    def tools(self) -> tuple[str, ...]:
        """The host executables this language cannot work without."""
        return tuple(cmd[0] for cmd in (self.compile, self.run) if cmd and not cmd[0].startswith("/out/"))


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        # -s: no user site directory; the system's own packages stay importable, read-only
        Language("python", ("python", "python3", "py"), "main.py", ("/usr/bin/python3", "-s", "/code/main.py")),
        Language("cpp", ("cpp", "c++", "cxx", "cc"), "main.cpp", ("/out/main",),
                 compile=("/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-o", "/out/main", "/code/main.cpp")),
    )
}


def language(name: str) -> Language:
    try:
        return LANGUAGES[name]
    except KeyError:
        raise ValueError(f"unknown language {name!r} (known: {', '.join(LANGUAGES)})") from None
