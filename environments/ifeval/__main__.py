"""`python -m environments.ifeval`: every constraint as Markdown (id, family, arguments, meaning, instruction)."""

from . import CONSTRAINTS


def _arguments(model) -> str:
    fields = model.model_json_schema().get("properties", {})
    return ", ".join(f"`{name}` ({_kind(spec)})" for name, spec in fields.items()) or "none"


def _kind(spec: dict) -> str:
    if "enum" in spec:
        return " \\| ".join(f'"{v}"' for v in spec["enum"])
    return {"array": "list of strings"}.get(spec.get("type", ""), spec.get("type", "string"))


def main() -> None:
    print(f"# Instruction-following constraints ({len(CONSTRAINTS)})\n")
    print("| id | family | arguments | meaning |\n|---|---|---|---|")
    for cid, c in sorted(CONSTRAINTS.items()):
        meaning = " ".join(c.doc.split()).replace("|", "\\|")
        print(f"| `{cid}` | {c.family} | {_arguments(c.args)} | {meaning} |")


if __name__ == "__main__":
    main()
