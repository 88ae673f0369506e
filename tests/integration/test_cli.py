"""The command line: help, and one clear line for every bad setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import service_env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openrouter_oauth.cli", *args],
        env=service_env(openrouter="http://127.0.0.1:9", port=1, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_help_lists_commands_and_settings():
    result = run("--help")
    assert result.returncode == 0
    for word in (
        "serve",
        "ISSUER_URL",
        "SECRET",
        "PREVIOUS_SECRETS",
        "ETCD_ENDPOINTS",
        "OPENROUTER_BASE_URL",
        "STATE_TTL_SECONDS",
        "ETCD_PREFIX",
    ):
        assert word in result.stdout
    assert "--workers" in run("serve", "--help").stdout


@pytest.mark.parametrize(
    ("env", "args", "needle"),
    [
        ({"ISSUER_URL": "http://example.com"}, (), "ISSUER_URL must use https"),
        ({"ISSUER_URL": "https://example.com/"}, (), "ISSUER_URL must have no trailing slash"),
        ({"SECRET": "short"}, (), "SECRET must be at least 32"),
        ({"ETCD_ENDPOINTS": "http://127.0.0.1:2379"}, (), "SECRET is required"),
        ({"ETCD_ENDPOINTS": "127.0.0.1"}, (), "ETCD_ENDPOINTS entries"),
        (
            {"ETCD_ENDPOINTS": "http://a.example:2379,http://b.example:2379", "SECRET": "s" * 40},
            (),
            "ETCD_ENDPOINTS with several endpoints must list IP addresses",
        ),
        (
            {"ETCD_ENDPOINTS": "http://127.0.0.1:99999", "SECRET": "s" * 40},
            (),
            "ETCD_ENDPOINTS has a malformed host or port",
        ),
        ({"ISSUER_URL": "http://[::1"}, (), "ISSUER_URL has a malformed host or port"),
        (
            {"ETCD_ENDPOINTS": "https://127.0.0.1:2379", "SECRET": "s" * 40, "ETCD_CA_FILE": "/"},
            (),
            "ETCD_CA_FILE names no readable file",
        ),
        ({"METRICS_PORT": "9464.5"}, (), "METRICS_PORT must be a whole number"),
        ({"STATE_TTL_SECONDS": "abc"}, (), "STATE_TTL_SECONDS must be a number"),
        ({"STATE_TTL_SECONDS": "5000"}, (), "STATE_TTL_SECONDS must be between"),
        ({"OPENROUTER_BASE_URL": "ftp://x"}, (), "OPENROUTER_BASE_URL must be"),
        (
            {
                "ETCD_CA_FILE": "/nonexistent",
                "ETCD_ENDPOINTS": "https://127.0.0.1:2379",
                "SECRET": "s" * 40,
            },
            (),
            "ETCD_CA_FILE names no readable file",
        ),
        ({}, ("--workers", "2"), "--workers > 1 needs ETCD_ENDPOINTS"),
        ({}, ("--port", "0"), "--port must be between"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(env, args, needle):
    result = (
        run("serve", "--port", "8000", *args, **env)
        if "--port" not in args
        else run("serve", *args, **env)
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "usage", "needle"),
    [
        (("serve", "--prot", "8080"), "usage: openrouter-oauth serve", "--prot 8080"),
        (("--verbose",), "usage: openrouter-oauth [-h]", "--verbose"),
        ((), "usage: openrouter-oauth [-h]", "a command is required: serve"),
    ],
)
def test_an_unknown_flag_names_itself_and_the_usage_of_its_command(args, usage, needle):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert needle in last and "Traceback" not in result.stderr
