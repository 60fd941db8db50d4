"""Campaign and funnel-stage resolution, and user config files."""

import pytest

from dashboard.core.config import ConfigError, load_config, resolve_campaign, resolve_stage


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"custom_data": {"campaign": "bf_retargeting"}}, "bf_retargeting"),
        # custom_data wins over the URL
        (
            {
                "custom_data": {"campaign": "a"},
                "event_source_url": "https://x.test/?utm_campaign=b",
            },
            "a",
        ),
        (
            {"event_source_url": "https://x.test/p?utm_source=fb&utm_campaign=spring%20sale"},
            "spring sale",
        ),
        ({"event_source_url": "https://x.test/p?utm_source=fb"}, "(none)"),
        ({"event_source_url": 12}, "(none)"),  # wrong type: ignored, not fatal
        ({"custom_data": {"campaign": "   "}}, "(none)"),  # blank is no campaign
        ({"custom_data": {"campaign": 42}}, "42"),
        ({}, "(none)"),
    ],
)
def test_resolve_campaign(event, expected, config):
    assert resolve_campaign(event, config) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"event_name": "Contact"}, "Contacted"),
        ({"event_name": "Lead"}, "Qualified"),
        ({"event_name": "LeadSubmitted"}, "Qualified"),
        ({"event_name": "QualifiedLead"}, "Qualified"),
        ({"event_name": "CompleteRegistration"}, "Qualified"),
        ({"event_name": "SubmitApplication"}, "Qualified"),
        ({"event_name": "Schedule"}, "Demo scheduled"),
        ({"event_name": "Purchase"}, "Closed won"),
        ({"event_name": "ViewContent"}, "ViewContent"),
        ({"event_name": "AddToCart"}, "AddToCart"),
        ({"event_name": "InitiateCheckout"}, "InitiateCheckout"),
        ({"event_name": "PageView"}, "(other)"),
        ({"event_name": "Lead", "custom_data": {"funnel_stage": "MQL"}}, "MQL"),  # explicit wins
    ],
)
def test_resolve_stage(event, expected, config):
    assert resolve_stage(event, config) == expected


def test_user_config_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        '[campaign]\nsources = ["url:utm_content"]\n'
        '[funnel.stages]\nLead = "MQL"\n'
        "[emq.tiers]\ngreat = 9.0\n"
    )
    config = load_config(path)
    assert (
        resolve_campaign(
            {"event_source_url": "https://x.test/?utm_content=c1&utm_campaign=x"}, config
        )
        == "c1"
    )
    assert resolve_stage({"event_name": "Lead"}, config) == "MQL"
    assert resolve_stage({"event_name": "Schedule"}, config) == "Demo scheduled"  # default kept
    assert config.emq_tiers == {"ok": 4.0, "good": 6.0, "great": 9.0}


def test_config_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text('[campaign]\ndefault = "unattributed"\n')
    monkeypatch.setenv("EQM_CONFIG", str(path))
    assert resolve_campaign({}, load_config()) == "unattributed"


def test_broken_config_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[campaign\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")


def test_earlier_stages(config):
    assert config.earlier_stages("Closed won") == {
        "Contacted",
        "Qualified",
        "Demo scheduled",
        "ViewContent",
        "AddToCart",
        "InitiateCheckout",
    }
    assert config.earlier_stages("Contacted") == set()
