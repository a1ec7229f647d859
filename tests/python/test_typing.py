"""Runs api_usage.exercise: every public signature, as the type checker saw it, works."""
import api_usage


def test_every_public_signature_runs(db_url):
    out = api_usage.exercise(db_url)
    assert out[-1], "callbacks saw transitions"
