"""``lrfr bench train`` prints one JSON object per backbone."""

from __future__ import annotations

import json

import pytest

from lrfr.cli import main


def test_bench_train_prints_json_lines(capsys):
    main(["bench", "train", "--backbones", "quick", "mobilefacenet", "--steps", "1", "--batch-size", "4", "--device", "cpu",
          "--sr-networks"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["backbone"] for line in lines] == ["quick", "mobilefacenet"]
    quick, mobile = lines
    assert quick["input_size"] == [32, 32] and mobile["input_size"] == [112, 112]
    for line in lines:
        assert line["bench"] == "train" and line["batch_size"] == 4 and line["device"] == "cpu"
        assert line["train_img_per_s"] > 0 and line["inference_img_per_s"] > 0
    assert mobile["parameters"] == 2_059_520


def test_bench_train_maug_line_times_the_paired_step(capsys):
    main(["bench", "train", "--backbones", "quick", "--sr-networks", "--steps", "1", "--batch-size", "4",
          "--device", "cpu", "--maug", "--input-size", "48"])
    plain, paired = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "objective" not in plain and paired["objective"] == "maug" and paired["input_size"] == [48, 48]
    assert paired["plain_img_per_s"] > 0 and paired["maug_img_per_s"] > 0 and paired["lr_copies_img_per_s"] > 0
    assert paired["cost_ratio"] > 0


def test_bench_train_measures_sr_networks(capsys):
    main(["bench", "train", "--backbones", "--sr-networks", "srcnn", "edsr", "--steps", "1", "--batch-size", "2",
          "--sr-size", "32", "--device", "cpu"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["sr_network"] for line in lines] == ["srcnn", "edsr"]
    for line in lines:
        assert line["input_size"] == [8, 8] and line["output_size"] == [32, 32] and line["scale"] == 4
        assert line["train_img_per_s"] > 0 and line["inference_img_per_s"] > 0
    assert lines[0]["parameters"] == 3 * 64 * 81 + 64 + 64 * 32 + 32 + 32 * 3 * 25 + 3  # SRCNN 9-1-5


def test_unknown_benchmark_is_named(capsys):
    assert main(["bench", "nope"]) == 1
    assert "lrfr bench: KeyError: unknown benchmark 'nope'" in capsys.readouterr().err
    with pytest.raises(KeyError, match="unknown benchmark 'nope'"):
        main(["--debug", "bench", "nope"])


def test_bench_stats_prints_one_line_per_statistic_with_its_interval(capsys):
    main(["bench", "stats", "--resamples", "20"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 7 and all(line["bench"] == "stats" and line["resamples"] == 20 for line in lines)
    tinyface = lines[0]
    assert tinyface["items"] == 3728 and tinyface["identities"] == 2570 and tinyface["seconds"] > 0
    assert "[" in tinyface["estimate"]
