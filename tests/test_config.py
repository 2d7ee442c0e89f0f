"""Run configs: every shipped config validates; bad configs fail with a one-line message naming the key."""

from pathlib import Path

import pytest

from distill.config import load_config
from distill.errors import DistillError

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "configs" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_parse_and_validate(path):
    cfg = load_config(path)
    assert cfg.run.dir


def test_default_config_is_the_offline_cpu_run():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.teacher.model == "models/smollm2-135m-instruct"
    assert cfg.student.from_teacher_layers == 18 and cfg.student.layer_selection == "drop_one_kl"
    assert cfg.generate.prompts == "prompts/train.jsonl"


def test_dotted_overrides_change_nested_values_and_parse_types():
    cfg = load_config(REPO / "configs" / "default.yaml",
                      ["train.lr=1e-4", "train.lora.enabled=true", "generate.stop=[END, STOP]", "run.dir=runs/x y"])
    assert cfg.train.lr == 1e-4
    assert cfg.train.lora.enabled is True
    assert cfg.generate.stop == ["END", "STOP"]
    assert cfg.run.dir == "runs/x y"


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


# (config text or override, the message it must produce)
BAD_CONFIGS = [
    ("train:\n  lrr: 0.1\n", "unknown config key train.lrr; did you mean train.lr?"),
    ("trian:\n  lr: 0.1\n", "unknown config key trian; did you mean train?"),
    ("train:\n  lr: fast\n", "config key train.lr: expected a number, got str 'fast'"),
    ("train:\n  max_steps: 1.5\n", "config key train.max_steps: expected an integer, got float 1.5"),
    ("train:\n  lora: yes please\n", "train.lora: expected a mapping, got str"),
    ("generate:\n  k: 0\n", "config key generate.k: must be at least 1, got 0"),
    ("train:\n  w_unlikelihood: -1\n", "config key train.w_unlikelihood: must be at least 0, got -1"),
    ("generate:\n  stop: END\n", "config key generate.stop: expected a list, got str 'END'"),
    ("train:\n  kd_loss: kl\n", "config key train.kd_loss: 'kl' is not one of forward_kl"),
    ("teacher:\n  backend: openai\n", "config key teacher.base_url is required when teacher.backend is openai"),
    ("student:\n  from_teacher_layers: null\n", "config key student.model is required unless student.from_teacher_layers"),
    ("train:\n  lr: [1\nrun:\n  dir: x\n", "c.yaml:3: invalid YAML"),
    ("- a\n- b\n", "expected a mapping of sections at the top level"),
    ("train:\n  jsd_beta: 1.5\n", "config key train.jsd_beta: must be below 1, got 1.5"),
    ("train:\n  save_total_limit: 0\n", "config key train.save_total_limit: must be at least 1, got 0"),
    ("train:\n  lora:\n    enabled: maybe\n", "config key train.lora.enabled: expected true or false, got str 'maybe'"),
    ("eval:\n  prompts: []\n", "config key eval.prompts: must not be empty"),
    ("train:\n  w_ce: 0\n  w_kd: 0\n", "config keys train.w_ce, train.w_kd and train.w_feature: must not all be 0"),
    ("generate:\n  mode: score\n  n: 2\n", "config key generate.n: must be 1 in scoring mode"),
    ("generate:\n  k: 5000\n", "config key generate.k: must be at most 1000, got 5000"),
    ("eval:\n  repetition_penalty: 0\n", "config key eval.repetition_penalty: must be above 0, got 0"),
]


@pytest.mark.parametrize("text,message", BAD_CONFIGS)
def test_bad_config_gives_one_line_error(tmp_path, text, message):
    with pytest.raises(DistillError) as e:
        load_config(write(tmp_path, text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(DistillError, match="expected key=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(DistillError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "configs" / "accelerate").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_accelerate_configs_load_in_accelerate(path):
    """accelerate's own loader rejects unknown keys and bad enum values; CI cannot launch the GPU ones."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.distributed_type.value in {"MULTI_GPU", "FSDP", "DEEPSPEED"}, config.distributed_type


def _leaves(tree: dict, code: dict, prefix: str = ""):
    """(dotted key, YAML value, code default) for every setting; a mapping-valued setting (train.upsample) is one."""
    for key, value in tree.items():
        section = code.get(key)
        if isinstance(value, dict) and isinstance(section, dict) and section and set(value) <= set(section):
            yield from _leaves(value, section, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value, section


def test_default_yaml_lists_only_what_differs_from_the_code_defaults_each_with_a_reason():
    """One home for every default: the YAML repeats no code default, and says why it differs."""
    import yaml

    from distill.config import Config

    path = REPO / "configs" / "default.yaml"
    text = path.read_text()
    for key, value, default in _leaves(yaml.safe_load(text), Config().model_dump()):
        assert default != value, f"{path}: {key}: {value!r} repeats the default in distill/config.py"
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(key.split(".")[-1] + ":"))
        assert "#" in line, f"{path}: {key} has no comment saying why it differs"


def test_pipeline_stages_follow_their_switches():
    from distill.cli import PIPELINE

    def stages(*overrides):
        cfg = load_config(REPO / "configs" / "default.yaml", list(overrides))
        return [(name, extra[:1]) for name, extra, wanted in PIPELINE if wanted(cfg)]

    default = stages()
    assert default == [("generate", []), ("train", []), ("eval", [])]
    both = stages("train.sft_baseline=true", "onpolicy.in_pipeline=true")
    assert both == [("generate", []), ("train", []), ("onpolicy", []), ("train", ["train.output_name=student_sft"]),
                    ("eval", [])]
