"""deploy/: the systemd units pass `systemd-analyze verify` (where it is installed), and the portal
and the scheduler run as a non-root service user exactly as the units say (their User,
EnvironmentFile, WorkingDirectory and ExecStart), that user owning the data and the keys with no
account of its own; /healthz turns 200 once the scheduler beats, /metrics answers on its own
address, and SIGTERM ends both cleanly within seconds.

The service-user test needs root (to make the user and drop to it); CI runs as root."""
from __future__ import annotations

import configparser
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from databases import backend
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("starfund-portal.service", "starfund-scheduler.service")
VERIFIED = (*UNITS, "starfund-backup.service", "starfund-backup.timer")
INSTALLED = "/opt/starfund/.venv/bin/starfund"
STARFUND = str(Path(sys.executable).with_name("starfund"))
STATE = "/var/lib/starfund"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(DEPLOY / name, encoding="utf-8")
    return parser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    for name in VERIFIED:  # as installed: this venv's starfund where they name /opt/starfund
        text = (DEPLOY / name).read_text(encoding="utf-8").replace(INSTALLED, STARFUND)
        (tmp_path / name).write_text(text, encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in VERIFIED)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "starfund-" not in r.stderr, r.stderr          # no warning about our units either
    broken = tmp_path / "broken" / UNITS[0]
    broken.parent.mkdir()
    broken.write_text((tmp_path / UNITS[0]).read_text().replace(STARFUND, "/nonexistent/sf"))
    r = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "is not executable" in r.stderr   # the check can fail


def test_compose_runs_postgres_portal_and_scheduler_as_the_units_do():
    """(No YAML parser is a dependency: the file's services and commands are read as lines;
    its commands are JSON-style lists.)"""
    compose = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    services = re.findall(r"^  (\w+):$", compose.split("\nservices:\n", 1)[1].split(
        "\nvolumes:\n", 1)[0], re.M)
    assert services == ["db", "portal", "scheduler"]
    commands = [json.loads(c) for c in re.findall(r"^    command: (\[.*\])$", compose, re.M)]
    assert [c[:2] for c in commands] == [["starfund", "serve"], ["starfund", "scheduler"]]
    portal = shlex.split(unit(UNITS[0])["Service"]["ExecStart"])   # in a container: every
    assert commands[0][1:] == [a.replace("127.0.0.1", "0.0.0.0") for a in portal[1:]]  # interface
    container = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in container and "libpango-1.0-0" in container
    assert "\nUSER starfund\n" in container and "HEALTHCHECK" in container


def _env_file(path: Path, state: Path, db: str, metrics_port: int) -> dict[str, str]:
    """deploy/starfund.env as an operator fills it in, pointed at this test's folder and
    database: mail to files, metrics on a free port."""
    settings: dict[str, str] = {}
    for line in (DEPLOY / "starfund.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value.replace(STATE, str(state))
    settings.update(STARFUND_DB=db, STARFUND_CHANNEL="file",
                    STARFUND_METRICS_LISTEN=f"127.0.0.1:{metrics_port}")
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
    return settings


def _as_user(user: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """What systemd does with User=/Group=: the command under that uid/gid, its groups, and a
    clean environment (the EnvironmentFile's settings and the user's HOME)."""
    entry = pwd.getpwnam(user)
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": entry.pw_dir, "USER": user,
            "LOGNAME": user, "LANG": "C.UTF-8"}
    return (["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
             "--"], {**base, **env})


def _service_python(prefix: list[str], env: dict[str, str], folder: Path) -> str:
    """An interpreter the service user can run, and start again (uvicorn's workers): this
    one, else (it lives under a folder only root may enter, as pyenv's under /root does here)
    a bare venv of the system's python of the same version, seeing this venv's packages."""
    def usable(python: str) -> bool:
        return subprocess.run([*prefix, "sh", "-c", f'exec "{python}" -c ""'], env=env,
                              capture_output=True, timeout=60).returncode == 0
    if usable(sys.executable):
        return sys.executable
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.path.exists(system):
        pytest.skip(f"the service user cannot run {sys.executable} and there is no {system}")
    bridge = folder / "python"
    subprocess.run([system, "-m", "venv", "--without-pip", str(bridge)], check=True,
                   timeout=120)
    import site

    packages = next(Path(p) for p in site.getsitepackages() if p.endswith("site-packages"))
    (next((bridge / "lib").glob("python3*/site-packages")) / "starfund.pth").write_text(
        f"{packages}\nimport site; site.addsitedir({str(packages)!r})\n")
    os.chmod(folder, 0o755)
    assert usable(str(bridge / "bin" / "python"))
    return str(bridge / "bin" / "python")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def test_portal_and_scheduler_run_as_the_service_user_the_units_name(db_url):
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with setpriv and useradd: this test must run there")
        pytest.skip("needs root (to make the service user and drop to it), setpriv, useradd")
    portal, scheduler = unit(UNITS[0])["Service"], unit(UNITS[1])["Service"]
    user = portal["User"]
    assert user == scheduler["User"] == portal["Group"] == "starfund"
    assert portal["EnvironmentFile"] == scheduler["EnvironmentFile"]
    assert portal["WorkingDirectory"] == scheduler["WorkingDirectory"] == STATE
    try:
        pwd.getpwnam(user)
    except KeyError:  # as docs/operations.md makes it
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", STATE,
                        "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    entry = pwd.getpwnam(user)
    state = Path(tempfile.mkdtemp(prefix="starfund-service-"))
    bridge = Path(tempfile.mkdtemp(prefix="starfund-py-"))
    try:
        os.chmod(state, 0o700)
        os.chown(state, entry.pw_uid, entry.pw_gid)
        db = str(state / "starfund.db") if backend() == "sqlite" else db_url
        metrics_port, port = free_port(), free_port()
        env_file = state.with_name(state.name + ".env")
        settings = _env_file(env_file, state, db, metrics_port)
        prefix, env = _as_user(user, settings)
        env["HOME"] = str(state)

        python = _service_python(prefix, env, bridge)
        run = [python, STARFUND]                # the installed command, by this interpreter

        def as_service(*args: str, login_dir: Path | None = None):
            given = {**env, "STARFUND_CONFIG_DIR": str(login_dir)} if login_dir else env
            return subprocess.run([*prefix, *run, *args], env=given, cwd=state,
                                  capture_output=True, text=True, timeout=120)

        # as deploy/starfund-cli runs it: `init` logs whoever ran it in, in their own login
        # file, never the service's (the service then acts as no account)
        made = as_service("init", "--account", "ops-admin", login_dir=state / "staff" / "ops")
        assert made.returncode == 0, made.stdout + made.stderr
        key = Path(settings["STARFUND_AUDIT_KEY"])
        assert key.stat().st_uid == entry.pw_uid and stat.S_IMODE(key.stat().st_mode) == 0o600
        # root is neither the key's owner nor an account: not the service, refused in one line
        plain = {k: v for k, v in os.environ.items() if k not in ("STARFUND_ACTOR", "STARFUND_NOW")}
        root = subprocess.run([STARFUND, "serve"], env={**plain, **settings},
                              capture_output=True, text=True, timeout=60)
        assert root.returncode == 1 and ("who you are is unknown" in root.stderr
                                         or "no account" in root.stderr), root.stderr

        def start(service: configparser.SectionProxy) -> subprocess.Popen:
            command = shlex.split(service["ExecStart"])
            assert command[0] == INSTALLED
            command[:1] = run
            if "--port" in command:
                command[command.index("--port") + 1] = str(port)
            return subprocess.Popen([*prefix, *command], env=env,
                                    cwd=service["WorkingDirectory"].replace(STATE, str(state)),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        named = {"scheduler": start(scheduler), "portal": start(portal)}
        procs = list(named.values())
        try:
            deadline = time.monotonic() + 90
            status, body = 0, ""
            while time.monotonic() < deadline:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                time.sleep(0.3)
            assert status == 200, body
            health = json.loads(body)
            assert health["chain_key"]["ok"] and health["scheduler"]["ok"]
            status, text_ = _get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert status == 200
            names = {f.name for f in text_string_to_metric_families(text_)}
            assert {"starfund_http_requests", "starfund_outbox_messages"} <= names
        finally:
            ended = {}
            for p in procs:
                p.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            for name, p in named.items():
                _, err = p.communicate(timeout=30)
                ended[name] = (p.returncode, time.monotonic() - stopped, err)
        for name, (code, took, err) in ended.items():
            assert code == 0, (name, err[-2000:])
            assert took < 15, (name, took)
        logged = ended["scheduler"][2].strip().splitlines()
        assert all(json.loads(line)["level"] for line in logged)   # STARFUND_LOG_FORMAT=json
        assert any(json.loads(line)["message"] == "scheduler stopped cleanly" for line in logged)
        trail = as_service("audit", "query", "--json", "--limit", "0")
        assert trail.returncode != 0 and "who you are is unknown" in trail.stderr  # no account
    finally:
        shutil.rmtree(state, ignore_errors=True)
        Path(str(state) + ".env").unlink(missing_ok=True)
        shutil.rmtree(bridge, ignore_errors=True)
