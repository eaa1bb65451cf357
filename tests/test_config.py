"""Configuration from the environment, declared in one place."""

import pytest

from handlers.config import VARIABLES, Settings
from handlers.errors import ConfigError


def test_the_defaults_are_usable():
    settings = Settings.from_env({})

    assert settings.jobs == {"mmm-app-training", "mmm-app-dev-training"}
    assert (settings.tolerance_cores, settings.grace_seconds) == (1, 120.0)
    assert (settings.cpu_rate_usd, settings.memory_rate_usd) == (0.000018, 0.000002)


def test_every_variable_is_described_with_its_value():
    rows = Settings.from_env({"WATCHDOG_JOBS": " a , b,"}).describe()

    assert [name for name, _, _ in rows] == [v.name for v in VARIABLES]
    assert rows[0][:2] == ("WATCHDOG_JOBS", "a,b")
    assert dict((n, v) for n, v, _ in rows)["WATCHDOG_CPU_RATE_USD"] == "0.000018"


@pytest.mark.parametrize(
    ("name", "value"),
    [("WATCHDOG_JOBS", " , "), ("WATCHDOG_LEDGER", "firestore-ish"),
     ("WATCHDOG_LEDGER", "sqlite:"), ("WATCHDOG_TOLERANCE_CORES", "-1"),
     ("WATCHDOG_TOLERANCE_CORES", "1.5"), ("WATCHDOG_GRACE_SECONDS", "soon"),
     ("WATCHDOG_CPU_RATE_USD", "-0.1"), ("WATCHDOG_BASELINE_TRAINING_MINUTES", "0"),
     ("WATCHDOG_MAX_ENTRY_BYTES", "10")],
)  # fmt: skip
def test_an_unusable_value_names_its_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"WATCHDOG_JOBS": "", "WATCHDOG_GRACE_SECONDS": "x"})

    assert "WATCHDOG_JOBS" in str(error.value)
    assert "WATCHDOG_GRACE_SECONDS" in str(error.value)


def test_each_variable_fills_one_setting_of_its_name():
    from dataclasses import fields

    assert sorted(v.field for v in VARIABLES) == sorted(
        f.name for f in fields(Settings)
    )
