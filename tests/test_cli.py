"""The ``medcoding`` command: expected errors as one message, the traceback behind --debug."""

import pytest

from medcoding import cli


def test_an_expected_error_prints_its_message_without_a_traceback(tmp_path, capsys):
    missing = tmp_path / "no-model"
    assert cli.main(["predict", "--model", str(missing), "--text", "fever"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (f"medcoding predict: model directory {missing} not found; "
                                   "train one with `medcoding train --data PREPARED --out "
                                   "MODEL_DIR`")
    assert "Traceback" not in err and "--debug" in err
    with pytest.raises(FileNotFoundError, match="not found"):
        cli.main(["predict", "--model", str(missing), "--text", "fever", "--debug"])
