import json

from click.testing import CliRunner

from rnnkit.runtime.cli import COMMANDS, cli


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_help_imports_no_torch(fresh_python):
    r = fresh_python("""
        import sys, json
        from rnnkit.runtime.cli import main
        try:
            main(["--help"])
        except SystemExit as e:
            print(json.dumps([e.code, "torch" in sys.modules]))
    """)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [0, False]


def test_train_without_torch_says_what_to_install(fresh_python):
    for argv in (["train", "--help"], ["export", "ckpt.pt", "--out", "m.onnx"]):
        r = fresh_python(f"""
            from rnnkit.runtime.cli import main
            main({argv!r})
        """, block=("torch",))
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'rnnkit[train]'" in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_datasets_lists_every_builtin_with_its_tasks_and_sizes():
    from rnnkit.train.corpora import builtin_names, load_builtin

    shown = CliRunner().invoke(cli, ["datasets"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    for name in builtin_names():
        assert any(line.startswith(f"builtin:{name} ") for line in lines), name
    assert "--task tag       1 example; 5 tagged tokens" in shown.stdout  # builtin:hello
    listed = json.loads(CliRunner().invoke(cli, ["datasets", "--json"]).stdout)
    assert [d["name"] for d in listed] == [f"builtin:{n}" for n in builtin_names()]
    for d in listed:
        for task, size in d["sizes"].items():
            assert size["examples"] == len(load_builtin(d["name"].split(":", 1)[1], task)) > 0
    reviews = next(d for d in listed if d["name"] == "builtin:reviews")
    assert reviews["tasks"] == ["classify", "lm"] and reviews["sizes"]["classify"]["labels"] == ["neg", "pos"]
