import pytest

from deephash.cli.main import main
from deephash.losses import list_losses
from deephash.miners import list_miners
from deephash.models import list_backbones


def test_lists_every_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_backbones() + list_losses() + list_miners():
        assert name in out


def test_pattern_filters_and_no_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "vgg*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("backbones:") and "resnet18" not in lines[0]
    assert main(["models", "zzz"]) == 1
