"""The reality check: every method tuned with the same budget on validation data only (Optuna).

A study searches a method's declared space (its config file's `search:` section, at most five settings, each
centred on the paper's value for the dataset) with a seeded TPE sampler, for the dataset's budget (its config
file's `tuning:` section: the same number of trials and the same epoch cap for every method). A trial trains on
the training items and is scored by the last epoch's validation mAP (the mean of both directions; validation
queries against the training items, docs/protocol.md): the test queries are never encoded. Unpromising trials
are pruned on the per-epoch validation mAP (a median pruner); a trial that diverges, fails or is killed is a
failed trial, never a result.

Studies live in an Optuna storage, so several processes or machines can work on one: a journal file by
default (its lock works on network file systems), or any Optuna database URL. `--trials` is the study's total:
trials are asked for under a lock, so workers together run exactly that many. A worker that is killed leaves
its trial running; the next worker on the same machine marks it failed (a database storage's heartbeats do
the same across machines). When the study is complete, its best settings are written as the `tuned` preset of
the method on the dataset (benchmarks.spec.config), which runs then retrain over run seeds and split seeds.
"""

import json
import logging
import os
import re
import socket
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.spec.config import flatten, label_protocol_tag, resolve, tuned_file, under_label_protocol
from benchmarks.spec.registry import declared
from common.errors import ConfigError, IncompleteEvaluation, TrainingDiverged
from common.files import atomic_write_bytes
from common.processes import running

STORAGE = Path("runs/tune/studies.log")  # user studies; the committed ones are in results/tuned
MAX_SETTINGS = 5
WORKER = "worker"  # the user attribute naming a trial's worker, host:pid
SEARCHES = "searches"  # the study's user attribute: what its trials search (Study.searches)
log = logging.getLogger("cmhb")


@dataclass(frozen=True)
class Budget:
    """A dataset's tuning budget (its config file's `tuning:` section), the same for every method.

    Attributes:
        trials: trials per study.
        epochs: the epoch cap of a trial (and of the tuned runs: the setting is chosen under it).
        bits: the code length studies run at.
    """

    trials: int = 16
    epochs: int = 20
    bits: int = 32


def budget(dataset: str) -> Budget:
    """The tuning budget a dataset's config file declares.

    Raises:
        ConfigError: a malformed `tuning:` section.
    """
    settings = declared("datasets", dataset).config().get("tuning", {})
    try:
        return Budget(**settings)
    except TypeError as error:
        raise ConfigError(f"{declared('datasets', dataset).path}: tuning takes trials, epochs and bits ({error})") from error


def search_space(method: str, dataset: str, bits: int) -> dict[str, dict]:
    """{option: {"low", "high", "log"} or {"choices"}} of a method on a dataset: each `factor: F` of the config
    file's `search:` section becomes a log-uniform range from value / F to value x F around the option's value
    for that dataset (the paper's), and `choices: [...]` a categorical one.

    Raises:
        ConfigError: more than MAX_SETTINGS settings, an unknown option, or a malformed entry.
    """
    declared_space = declared("methods", method).config().get("search", {})
    path = declared("methods", method).path
    if len(declared_space) > MAX_SETTINGS:
        raise ConfigError(f"{path}: search names {len(declared_space)} settings; at most {MAX_SETTINGS}")
    values = resolve(method, dataset, bits, 0).config()
    space = {}
    for key, entry in declared_space.items():
        section, _, name = key.partition(".")
        if section not in ("method", "data", "trainer") or name not in values.get(section, {}):
            raise ConfigError(f"{path}: search names {key!r}, which is no option of {method}")
        if "choices" in entry:
            space[key] = {"choices": list(entry["choices"])}
        elif "factor" in entry and entry["factor"] > 1 and values[section][name]:
            value = float(values[section][name])
            space[key] = {"low": value / entry["factor"], "high": value * entry["factor"], "log": True}
        else:
            raise ConfigError(f"{path}: search {key!r} needs `factor: F` (> 1, around a non-zero value) or "
                              "`choices: [...]`")
    return space


def suggest(trial, key: str, entry: dict):
    if "choices" in entry:
        return trial.suggest_categorical(key, entry["choices"])
    return trial.suggest_float(key, entry["low"], entry["high"], log=entry["log"])


def open_storage(storage: str):
    """An Optuna storage: a journal file (a path; default; a damaged tail is cut first, `cut_damaged_tail`), or a
    database URL (`postgresql://...`, `mysql://...`, `sqlite:///...`; with heartbeats, so a killed worker's trial
    fails on any machine).

    Raises:
        ConfigError: the URL names no database the environment can reach, or the journal is damaged before its end.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if "://" in storage:
        return open_database(storage)
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileOpenLock(storage)
    with held(lock):
        cut_damaged_tail(Path(storage))
    return optuna.storages.JournalStorage(JournalFileBackend(storage, lock_obj=lock))


def open_database(url: str):
    """An Optuna database storage at `url`, or one line saying why it cannot be had."""
    import optuna
    import sqlalchemy

    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)  # never print a password
    try:
        for attempt in range(3):
            try:
                with experimental():
                    return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
            except sqlalchemy.exc.IntegrityError:  # workers started together on a new database race to create
                if attempt == 2:                   # its tables; the loser finds them made on its next try
                    raise
                time.sleep(1 + attempt)
    except ImportError as error:  # the URL's driver is not installed
        raise ConfigError(f"--storage {shown}: no driver for this database in the environment ({error}); for "
                          "PostgreSQL: pip install -e '.[postgres]'") from error
    except (ValueError, sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise ConfigError(f"--storage {shown}: not a database URL ({' '.join(str(error).split())}); e.g. "
                          "postgresql://user@host/db, or a journal file's path") from error
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        raise ConfigError(f"--storage {shown}: cannot open this database ({reason}); is its server running and "
                          "the database created?") from error


@contextmanager
def experimental():
    """Optuna's heartbeats are "experimental", and Optuna says so on every use: silenced."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


@contextmanager
def held(lock):
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def cut_damaged_tail(path: Path, say=log.warning) -> None:
    """Cut what a writer killed mid-write leaves at a journal's end (a line without its end, or lines that are not
    JSON), keeping it beside the journal, before anything is appended: appended after it, a torn line would sit
    inside the journal, where Optuna refuses to read past it. Call with the journal's lock held.

    Raises:
        ConfigError: a damaged line has readable entries after it (what can be read is not the study's record).
    """
    if not path.is_file():
        return
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    readable = [line.endswith(b"\n") and is_json(line) for line in lines]
    first_bad = readable.index(False) if False in readable else len(lines)
    if first_bad == len(lines):
        return
    if any(readable[first_bad:]):
        raise ConfigError(f"{path}: line {first_bad + 1} of this study journal is damaged and readable entries "
                          f"follow it ({sum(readable[first_bad:])}), so the study cannot be read: restore the "
                          "file from a copy, or start a new study (another --storage or --study)")
    good = sum(map(len, lines[:first_bad]))
    kept = path.with_name(f"{path.name}.damaged-{time.time_ns()}")
    atomic_write_bytes(kept, data[good:])
    os.truncate(path, good)
    say(f"{path}: cut its damaged last {len(data) - good} bytes (what a writer killed mid-write leaves; kept in "
        f"{kept}); the study goes on from its {first_bad} readable entries")


def is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


@contextmanager
def ask_lock(storage: str):
    """One worker at a time between counting a study's trials and asking for the next, so that workers stop
    at exactly the study's total: a lock file beside a journal (or SQLite) file, which network file systems
    honour (created exclusively), or the database's own advisory lock."""
    from optuna.storages.journal import JournalFileOpenLock

    if "://" not in storage or storage.startswith("sqlite:///"):
        path = storage.removeprefix("sqlite:///")
        with held(JournalFileOpenLock(f"{path}.ask", grace_period=120)):
            yield
        return
    import sqlalchemy

    statements = {"postgresql": ("SELECT pg_advisory_lock(7291)", "SELECT pg_advisory_unlock(7291)"),
                  "mysql": ("SELECT GET_LOCK('cmhb-ask', 600)", "SELECT RELEASE_LOCK('cmhb-ask')")}
    scheme = storage.split(":")[0].split("+")[0]
    if scheme not in statements:
        raise ConfigError(f"--storage {storage}: a journal file, or a postgresql, mysql or sqlite URL")
    engine = sqlalchemy.create_engine(storage)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(statements[scheme][0]))
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(statements[scheme][1]))


def alive(worker: str) -> bool | None:
    """Whether a trial's worker (host:pid) still runs: None when it ran on another machine."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return running(int(pid))


def fail_orphans(study) -> None:
    """Mark failed the running trials whose worker died (on this machine; a database's heartbeats, elsewhere)."""
    import optuna

    if isinstance(study._storage, optuna.storages._heartbeat.BaseHeartbeat):
        with experimental():
            optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if alive(trial.user_attrs.get(WORKER, "")) is False:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            log.warning(f"trial {trial.number + 1} of {study.study_name} failed: its worker "
                        f"({trial.user_attrs[WORKER]}) ended without finishing it")


def study_name(method: str, dataset: str, bits: int, overrides: list[str]) -> str:
    """A study's default name: `<method>-<dataset>-<bits>b`, then its label protocol where the overrides set one
    (a study on noisy labels is another study, with a tuned preset of its own)."""
    return under_label_protocol(f"{method}-{dataset}-{bits}b", resolve(method, dataset, bits, 0, overrides).settings)


@dataclass
class Study:
    """One method on one dataset at one code length, searched for `trials` trials of `epochs` epochs.

    Attributes:
        method, dataset, bits: what is tuned.
        trials, epochs: the budget.
        name: the study's name in its storage.
        storage: a journal file or a database URL.
        seed: the TPE sampler's seed.
        overrides: `--section.key=value` settings every trial has (where data lives, how fast it runs).
        tuned: the folder the tuned preset is written to (None: runs/tune, where `--preset tuned` looks).
    """

    method: str
    dataset: str
    bits: int
    trials: int
    epochs: int
    name: str
    storage: str
    seed: int = 0
    overrides: tuple = ()
    tuned: Path | None = None

    def load(self, trial: int = 0):
        """The Optuna study (created when new), its TPE sampler seeded for trial number `trial`: each trial draws
        from its own seed, so workers started together do not repeat each other's settings, and a study run by
        one worker or several draws the same sequence."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=self.name, storage=open_storage(self.storage), load_if_exists=True,
                                    direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed + trial),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
        searched, mine = study.user_attrs.get(SEARCHES), self.searches()
        if searched is None:  # a new study records what its trials search, for every later worker to compare
            study.set_user_attr(SEARCHES, mine)
        elif searched != mine:
            differ = "; ".join(f"{k}: {searched.get(k)} there, {mine[k]} here" for k in mine
                               if searched.get(k) != mine[k])
            raise ConfigError(f"study {self.name} in {self.storage} searches other than this worker would ({differ}); "
                              "give this search its own --study name, or the study's settings")
        return study

    def searches(self) -> dict:
        """What a trial of this study is: the method, data, code length, epoch cap, search space, and the hash of
        the settings every trial shares (where data lives and how fast it runs do not count: machines differ)."""
        return {"method": self.method, "dataset": self.dataset, "bits": self.bits, "epochs": self.epochs,
                "space": search_space(self.method, self.dataset, self.bits), "settings": self.trial_spec({}).hash}

    def trial_spec(self, params: dict):
        """The run of a trial: the common preset with the trial's settings, capped at the study's epochs."""
        epochs = min(self.epochs, resolve(self.method, self.dataset, self.bits, 0).settings["trainer"].get(
            "max_epochs", self.epochs))
        overrides = [*self.overrides, *(f"--{k}={v}" for k, v in params.items()), f"--trainer.max_epochs={epochs}",
                     "--logger.kind=none"]
        return resolve(self.method, self.dataset, self.bits, 0, overrides)

    def work(self, say=print) -> None:
        """Run trials until the study has `trials` of them (all states counted; `finish` then writes the tuned
        preset). Each trial is enqueued under the ask lock and run by Optuna (heartbeats with a database
        storage; a diverged or failed trial is marked failed, a pruned one pruned)."""
        study = self.load()
        while True:
            with ask_lock(self.storage):
                fail_orphans(study)
                asked = len(study.get_trials(deepcopy=False))
                if asked >= self.trials:
                    break
                study.enqueue_trial({})
            study, started = self.load(asked), time.perf_counter()
            study.optimize(self.objective, n_trials=1, catch=(TrainingDiverged, IncompleteEvaluation),
                           callbacks=[lambda study, trial: say(self.line(study, trial, time.perf_counter() - started))])

    def objective(self, trial) -> float:
        """Train one trial; its last epoch's validation mAP (mean of both directions). The test is never run."""
        from optuna_integration import PyTorchLightningPruningCallback

        from benchmarks.execution.pipeline import build, silent

        trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")
        params = {key: suggest(trial, key, entry)
                  for key, entry in search_space(self.method, self.dataset, self.bits).items()}
        run = build(self.trial_spec(params), callbacks=[PyTorchLightningPruningCallback(trial, "val/map")],
                    announce=silent)
        if not len(run.data.split.val):
            raise ConfigError(f"{self.dataset} has no validation split: nothing to tune on")
        run.trainer.fit(run.method, datamodule=run.data)
        validation = run.evaluation.results["val"]["hamming"]
        return sum(result.map for result in validation.values()) / len(validation)

    def line(self, study, trial, seconds: float) -> str:
        """One line per trial: its result and settings, and the best so far."""
        import optuna

        settings = ", ".join(f"{k.split('.')[-1]}={v:.4g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
                             for k, v in trial.params.items())
        result = f"val mAP {trial.value:.4f}" if trial.state == optuna.trial.TrialState.COMPLETE else \
            trial.state.name.lower()
        done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        best = max(done, key=lambda t: t.value, default=None)
        return (f"{self.name} trial {trial.number + 1}/{self.trials}: {result} ({settings}; {seconds:.0f} s)"
                + (f"; best {best.value:.4f} (trial {best.number + 1})" if best else ""))

    def finish(self, study, say=print) -> Path | None:
        """Write the tuned preset (the best trial's settings) once every trial has finished; None before that.

        Raises:
            ConfigError: the study finished without a complete trial.
        """
        import optuna

        states = [t.state for t in study.get_trials(deepcopy=False)]
        if len(states) < self.trials or optuna.trial.TrialState.RUNNING in states:
            say(f"{self.name}: {len(states)} of {self.trials} trials asked for, "
                f"{states.count(optuna.trial.TrialState.RUNNING)} running elsewhere; the tuned preset is written "
                "when all have finished")
            return None
        counts = {s.name.lower(): states.count(s) for s in (optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED,
                                                            optuna.trial.TrialState.FAIL)}
        if not counts["complete"]:
            raise ConfigError(f"{self.name}: none of its {len(states)} trials completed; nothing to choose from")
        best = study.best_trial
        spec = self.trial_spec(best.params)
        settings = {"method": {k.partition(".")[2]: v for k, v in best.params.items() if k.startswith("method.")},
                    "trainer": {"max_epochs": spec.settings["trainer"]["max_epochs"]}}
        for key, value in best.params.items():
            if key.startswith("data."):
                settings.setdefault("data", {})[key.partition(".")[2]] = value
        preset = {"study": {"name": self.name, "storage": str(self.storage), "bits": self.bits,
                            "trials": counts, "best_trial": best.number, "best_val_map": round(best.value, 6)},
                  **settings}
        path = tuned_file(self.method, self.dataset, self.tuned, label_protocol_tag(flatten(spec.settings)))
        header = (f"# The tuned preset of {self.method} on {self.dataset}: the best of {len(states)} trials "
                  f"({counts['pruned']} pruned, {counts['fail']} failed) on its validation split at {self.bits} bits "
                  f"(cmhb tune; study {self.name} in {self.storage}).\n")
        atomic_write_bytes(path, (header + yaml.safe_dump(preset, sort_keys=False)).encode())
        say(f"{self.name}: best validation mAP {best.value:.4f} (trial {best.number + 1}: "
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
            + f"); tuned preset written to {path}")
        return path


def work(study: Study) -> None:
    """A tuning worker (what each array task of `cmhb tune --launcher slurm` runs)."""
    study.work()
