"""``litllm serve``'s options, checked before anything is loaded."""

from __future__ import annotations

import pytest

from litllm.errors import ConfigError
from litllm.serve.cli import default_name, parse_args


def test_defaults_bind_localhost_and_the_old_option_name_still_works(tmp_path, monkeypatch):
    monkeypatch.delenv("LITLLM_API_KEY", raising=False)
    opts = parse_args(["--checkpoint", str(tmp_path)])
    assert (opts.model_dir, opts.host, opts.port, opts.max_batch, opts.api_key) == (
        str(tmp_path),
        "127.0.0.1",
        8000,
        8,
        None,
    )


@pytest.mark.parametrize("bad", [["--max_batch", "0"], ["--port", "70000"]])
def test_out_of_range_options_are_one_line_errors(tmp_path, bad):
    with pytest.raises(ConfigError, match=bad[0]):
        parse_args(["--model_dir", str(tmp_path), *bad])


def test_the_model_is_named_after_its_directory_or_its_run(tmp_path):
    assert default_name(tmp_path / "out" / "sft_full_tiny" / "final") == "sft_full_tiny"
    assert default_name(tmp_path / "my-model") == "my-model"
