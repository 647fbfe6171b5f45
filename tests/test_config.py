"""Settings: defaults, TOML, environment, precedence and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.config import load_settings
from crewchief.errors import ConfigError


def test_defaults_put_all_state_under_home(tmp_path: Path) -> None:
    s = load_settings(env={"CREWCHIEF_HOME": str(tmp_path / "h")})
    assert s.home == (tmp_path / "h").resolve()
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'crewchief.db'}"
    assert s.resolved_checkpoint_url == str(tmp_path / "h" / "checkpoints.db")
    assert s.simplicity_threshold == 0.7
    assert {a: c.model for a, c in s.models.items()} == dict.fromkeys(
        ("orchestrator", "delegate", "fast"), "local:qwen2.5-coder-1.5b"
    )
    assert not s.models_configured()
    assert s.max_output_tokens == 4096 and s.local.auto_pull


def test_local_model_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "CREWCHIEF_HOME": str(tmp_path),
        "CREWCHIEF_LLAMA_SERVER": "/opt/llama/llama-server",
        "CREWCHIEF_LOCAL_CONTEXT_SIZE": "8192",
        "CREWCHIEF_LOCAL_THREADS": "3",
        "CREWCHIEF_LOCAL_AUTO_PULL": "false",
        "CREWCHIEF_MAX_OUTPUT_TOKENS": "512",
    }
    s = load_settings(env=env)
    assert s.local.server_binary == "/opt/llama/llama-server"
    assert (s.local.context_size, s.local.threads, s.local.auto_pull) == (8192, 3, False)
    assert s.max_output_tokens == 512
    with pytest.raises(ConfigError, match="local.context_size"):
        load_settings(env={**env, "CREWCHIEF_LOCAL_CONTEXT_SIZE": "12"})


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "crewchief.toml"
    cfg.write_text(
        "simplicity_threshold = 0.5\nmax_parallel_tasks = 2\n"
        '[models.orchestrator]\nmodel = "openai:gpt-5"\nfallbacks = ["deepseek:deepseek-chat"]\n'
        '[providers.deepseek]\ntype = "openai"\nbase_url = "https://api.deepseek.com"\napi_key_env = "DEEPSEEK_API_KEY"\n'
    )
    env = {
        "CREWCHIEF_MAX_PARALLEL_TASKS": "3",
        "CREWCHIEF_DELEGATE_MODEL": "ollama:qwen2.5-coder:7b",
    }
    s = load_settings(cfg, env=env, simplicity_threshold=0.9)
    assert s.simplicity_threshold == 0.9
    assert s.max_parallel_tasks == 3
    assert s.models["orchestrator"].model == "openai:gpt-5"
    assert s.models["orchestrator"].fallbacks == ["deepseek:deepseek-chat"]
    assert s.models["delegate"].model == "ollama:qwen2.5-coder:7b"
    assert s.providers["deepseek"].base_url == "https://api.deepseek.com"
    assert s.models_configured()


def test_one_variable_binds_every_alias() -> None:
    s = load_settings(
        env={
            "CREWCHIEF_MODEL": "openai:gpt-4.1-mini",
            "CREWCHIEF_FAST_MODEL": "openai:gpt-4.1-nano",
            "CREWCHIEF_ORCHESTRATOR_FALLBACKS": "openai:gpt-4.1, ollama:llama3",
        }
    )
    assert s.models["delegate"].model == "openai:gpt-4.1-mini"
    assert s.models["fast"].model == "openai:gpt-4.1-nano"
    assert s.models["orchestrator"].fallbacks == ["openai:gpt-4.1", "ollama:llama3"]


def test_postgres_url_moves_checkpoints_too() -> None:
    s = load_settings(env={"CREWCHIEF_DATABASE_URL": "postgresql://u@db:5432/app"})
    assert s.resolved_database_url == "postgresql+psycopg://u@db:5432/app"
    assert s.resolved_checkpoint_url == "postgresql://u@db:5432/app"
    assert s.is_postgres


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CREWCHIEF_SIMPLICITY_THRESHOLD": "2"},
            "simplicity_threshold: Input should be less than or equal to 1",
        ),
        (
            {"CREWCHIEF_MAX_PARALLEL_TASKS": "many"},
            "max_parallel_tasks: Input should be a valid integer",
        ),
        (
            {"CREWCHIEF_MODEL": "gpt-4"},
            "models.orchestrator.model: Value error, model spec 'gpt-4' must look like 'provider:model'",
        ),
    ],
)
def test_bad_values_name_the_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env=env)
    assert message in str(exc.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("simplicity_threshold = = 1")
    with pytest.raises(ConfigError, match=f"config file {cfg} is not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    cfg.write_text('[models.planner]\nmodel = "openai:x"\n')
    with pytest.raises(ConfigError, match=r"unknown model alias\(es\) \['planner'\]"):
        load_settings(cfg, env={})


def test_tiers_and_deep_threshold_from_toml_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "crewchief.toml"
    cfg.write_text(
        "simplicity_threshold = 0.62\n"
        '[tiers.fast]\nalias = "fast"\n'
        '[tiers.deep]\neffort = "thorough"\n'
    )
    s = load_settings(cfg, env={"CREWCHIEF_SIMPLICITY_DEEP_BELOW": "0.2"})
    assert (s.simplicity_threshold, s.simplicity_deep_below) == (0.62, 0.2)
    # A tier table keeps the defaults of the keys it does not set; efforts are normalized.
    assert {n: (t.alias, t.effort) for n, t in s.tiers.items()} == {
        "fast": ("fast", "low"),
        "balanced": ("orchestrator", "medium"),
        "deep": ("orchestrator", "high"),
    }
    with pytest.raises(ConfigError, match="simplicity_deep_below"):
        load_settings(cfg, env={"CREWCHIEF_SIMPLICITY_DEEP_BELOW": "1.5"})


def test_prices_from_toml_are_checked_field_by_field(tmp_path: Path) -> None:
    cfg = tmp_path / "crewchief.toml"
    cfg.write_text(
        '[prices."gpt-5"]\ninput = 1.0\noutput = 8.0\ncached_input = 0.1\n'
        '[prices."deepseek:deepseek-chat"]\ninput = 0.27\noutput = 1.10\n'
    )
    settings = load_settings(cfg, env={})
    assert settings.prices["gpt-5"].cached_input == 0.1
    assert settings.prices["gpt-5"].reasoning is None  # billed at the output price
    assert settings.prices["deepseek:deepseek-chat"].output == 1.10
    cfg.write_text('[prices."gpt-5"]\ninput = -1\noutput = 8\n[prices.cheap]\noutput = 1\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, env={})
    assert "prices.gpt-5.input: Input should be greater than or equal to 0" in str(exc.value)
    assert "prices.cheap.input: Field required" in str(exc.value)
    cfg.write_text('[prices."gpt-5"]\ninput = 1\noutput = 8\ncache = 0.1\n')
    with pytest.raises(ConfigError, match=r"prices\.gpt-5\.cache: Extra inputs are not permitted"):
        load_settings(cfg, env={})
    cfg.write_text('[prices."gpt-5"]\ninput = 1\noutput = "a lot"\n')
    with pytest.raises(ConfigError, match=r"prices\.gpt-5\.output: Input should be a valid number"):
        load_settings(cfg, env={})
