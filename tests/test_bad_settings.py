"""Settings files and options a careless user or a crashed writer leaves: each is refused in one `error:` line
naming the file or option and the fix, before any work, and no row is written."""

import pytest

from benchmarks.cli import main

TOY = ["--dataset", "toy", "--bits", "16", "--data.subset=300", "--logger.kind=none"]
PRESET = ("# The tuned preset of lsh on toy: ...\nstudy:\n  name: lsh-toy-16b\n  bits: 16\n"
          "  best_val_map: 0.1\nmethod:\n  scale: 1.0\ntrainer:\n  max_epochs: 1\n")


def one_error_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(fragment in err for fragment in fragments), err


@pytest.mark.parametrize("content", [
    PRESET.encode()[:PRESET.index("\n") + 1],  # cut to its comment line
    b"",
    bytes(range(256)),  # binary
    PRESET.encode()[:PRESET.index("method:")],  # its study, not its settings
    b"- 1\n- 2\n",
    PRESET.encode()[PRESET.index("method:"):],  # settings without a study
    PRESET.encode().replace(b"trainer:", b"optimizer:"),
])
def test_a_damaged_tuned_preset_is_refused_not_run_as_the_common_settings(tmp_path, capsys, content):
    (tmp_path / "lsh-toy.yaml").write_bytes(content)
    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "lsh", *TOY, "--preset", "tuned", "--tuned", str(tmp_path),
                 f"--results={results}"]) == 2
    one_error_line(capsys, str(tmp_path / "lsh-toy.yaml"))
    assert not results.exists()


@pytest.mark.parametrize("content, fragment", [
    (None, "a folder"),
    (b"- method: lsh\n", "not a file of settings"),
    (b"run: [1, 2]\n", "not a file of settings"),
    (bytes(range(256)), "not a text file"),
])
def test_a_config_file_that_is_no_settings_is_one_line(tmp_path, capsys, content, fragment):
    path = tmp_path / "config.yaml"
    path.mkdir() if content is None else path.write_bytes(content)
    assert main(["bench", "--method", "lsh", *TOY, "--config", str(path), f"--results={tmp_path / 'r.jsonl'}"]) == 2
    one_error_line(capsys, str(path), fragment)


@pytest.mark.parametrize("command, fragment", [
    (["bench", "--method", "sgrn", *TOY[:2], "--bits", "100000000000"], "--bits: expected an integer from 1 to 4096"),
    (["bench", "--method", "sgrn", *TOY, "--seed", "99999999999999999999999"], "--seed: expected an integer from 0"),
    (["bench", "--method", "sgrn", *TOY, "--trainer.max_epochs=-3"], "--trainer.max_epochs=-3: give at least 1"),
    (["bench", "--method", "sgrn", *TOY, "--trainer.max_epochs=0"], "--trainer.max_epochs=0: give at least 1"),
    (["tune", "--method", "sgrn", "--dataset", "toy", "--trials", "0"], "--trials: expected a positive integer"),
    (["tune", "--method", "sgrn", "--dataset", "toy", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["tune", "--method", "sgrn", "--dataset", "toy", "--bits", "0"], "--bits: expected an integer from 1"),
])
def test_out_of_range_numbers_are_refused_never_taken_for_a_default(tmp_path, capsys, command, fragment):
    """Zero is no request for the default, and a code length or seed outside its range is named with the range."""
    extra = [f"--results={tmp_path / 'r.jsonl'}"] if command[0] == "bench" else \
        ["--storage", str(tmp_path / "studies.log"), "--tuned", str(tmp_path)]
    assert main([*command, *extra]) == 2
    one_error_line(capsys, fragment)
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "studies.log").exists()


def journal_with_trials(path, trials: int = 3) -> None:
    import optuna

    from benchmarks.campaigns.tuning import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=trials)


@pytest.mark.parametrize("damage", ["torn", "garbage"])
def test_a_journals_damaged_tail_is_cut_and_kept_and_the_study_goes_on(tmp_path, caplog, damage):
    """What a writer killed mid-write leaves at a journal's end is cut before anything is appended after it
    (Optuna would then refuse to read past it), kept beside the journal, and said; the study goes on."""
    import optuna

    from benchmarks.campaigns.tuning import open_storage

    path = tmp_path / "studies.log"
    journal_with_trials(path)
    damaged = path.read_bytes()[:-40] if damage == "torn" else path.read_bytes() + b"\x00garbage\n"
    path.write_bytes(damaged)
    study = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    states = [t.state for t in optuna.load_study(study_name="s", storage=open_storage(str(path))).trials]
    # The torn write was the third trial's end: that trial stays unfinished (a worker marks it failed).
    assert len(states) == 5 and states.count(optuna.trial.TrialState.COMPLETE) == (4 if damage == "torn" else 5)
    [kept] = tmp_path.glob("studies.log.damaged-*")
    cut = len(damaged) - len(kept.read_bytes())
    assert damaged[cut:] == kept.read_bytes() and path.read_bytes()[:cut] == damaged[:cut]
    assert f"{path}: cut its damaged last {len(damaged) - cut} bytes" in caplog.text and str(kept) in caplog.text
    if damage == "garbage":
        assert kept.read_bytes() == b"\x00garbage\n"


def test_a_journal_damaged_before_its_end_is_one_line(tmp_path, capsys):
    path = tmp_path / "studies.log"
    journal_with_trials(path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"{not json\n"] + lines[2:]))
    before = path.read_bytes()
    assert main(["tune", "--method", "cca_itq", "--dataset", "toy", "--storage", str(path), "--study", "s",
                 "--tuned", str(tmp_path)]) == 2
    one_error_line(capsys, f"{path}: line 3 of this study journal is damaged", "restore the file")
    assert path.read_bytes() == before  # nothing lost


@pytest.mark.parametrize("url, fragment", [
    ("postgresql://nobody:secret@127.0.0.1:1/x", "cannot open this database"),
    ("postgresql://::::/x", "not a database URL"),
    ("foo://bar", "not a database URL"),
])
def test_a_storage_url_that_opens_nothing_is_one_line(tmp_path, capsys, url, fragment):
    assert main(["tune", "--method", "cca_itq", "--dataset", "toy", "--storage", url, "--tuned", str(tmp_path)]) == 2
    one_error_line(capsys, "--storage " + url.replace(":secret@", ":***@"), fragment)  # a password is never shown


def test_a_sweep_override_scoped_to_nothing_in_the_grid_is_refused(tmp_path, capsys):
    """`--tyo:data.subset=300` (a typo of `--toy:`) would otherwise apply to nothing and run the full set."""
    results = tmp_path / "rows.jsonl"
    assert main(["sweep", "--methods", "lsh", "--datasets", "toy", "--bits", "16", "--results", str(results),
                 "--tyo:data.subset=300", "--logger.kind=none"]) == 2
    one_error_line(capsys, "--tyo:data.subset=300: 'tyo' is none of this sweep's methods (lsh) or datasets (toy)")
    assert not results.exists()


def test_a_worker_that_searches_otherwise_cannot_join_a_study(tmp_path, capsys):
    """Two `cmhb tune` on one study name with different code lengths, epochs or data would mix trials that are
    not comparable into one preset: the study records what it searches and refuses a worker that differs."""
    from benchmarks.campaigns.tuning import Study

    storage = str(tmp_path / "studies.log")
    Study("cca_itq", "toy", 32, 4, 3, "s", storage).load()  # the first worker records its search
    Study("cca_itq", "toy", 32, 4, 3, "s", storage, overrides=(f"--data.data_dir={tmp_path}",)).load()  # a place
    for command, differs in ((["--bits", "16"], "bits: 32 there, 16 here"), (["--epochs", "5"], "epochs: 3 there"),
                             (["--data.subset=300"], "settings: ")):
        assert main(["tune", "--method", "cca_itq", "--dataset", "toy", "--study", "s", "--storage", storage,
                     "--trials", "4", "--epochs", "3", "--tuned", str(tmp_path), *command]) == 2
        one_error_line(capsys, f"study s in {storage} searches other than this worker would", differs)


@pytest.mark.parametrize("change, fragment", [
    ({"reference_seconds": 0}, "reference_seconds is 0; expected a number above 0"),
    ({"methods": {"lsh": {}}}, "methods.lsh.map_i2t is None"),
    ({"methods": ["lsh"]}, "methods must map each method to its numbers"),
    ({"tolerance": "x"}, "tolerance is 'x'; expected a number above 0"),
    ({"bits": 1e12}, "bits is 1000000000000.0; expected an integer of at least 1"),
    ({"overrides": "--data.subset=300"}, "overrides must be a list"),
])
def test_a_damaged_regression_baseline_names_its_field(tmp_path, capsys, change, fragment):
    import json

    from benchmarks.campaigns.regress import REGRESSION_DIR

    path = tmp_path / "wikipedia.json"
    path.write_text(json.dumps({**json.loads((REGRESSION_DIR / "wikipedia.json").read_text()), **change}))
    assert main(["regress", str(path)]) == 2
    one_error_line(capsys, f"{path}: {fragment}")


@pytest.mark.parametrize("command", ["table", "plot"])
def test_no_rows_to_report_is_a_data_condition(tmp_path, capsys, command):
    """An empty results file is a state of the data (status 1), not a wrong command (2)."""
    (tmp_path / "rows.jsonl").write_text("")
    assert main([command, "--results", str(tmp_path / "rows.jsonl"), "--out", str(tmp_path / "out")]) == 1
    one_error_line(capsys, f"{tmp_path / 'rows.jsonl'}: no result rows to")
