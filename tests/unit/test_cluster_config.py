"""The scale-out configs: cluster.yaml and cluster-onprem.yaml pass the checks `ray up` runs before
it asks a cloud for anything (Ray's own defaults merge and JSON schema), deploy/kuberay-rayjob.yaml
is a RayJob for the same image, and all three agree with this project (Ray and Python versions,
GPU workers, code sync, install). No network, no cloud credentials."""

from __future__ import annotations

import configparser
import copy
import json
import re
import shutil
import socket
import stat
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import hash_runtime_conf, prepare_config, validate_config

from components.config import parse_params
from tests.conftest import REPO

CLUSTER_CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]
KUBERAY = "deploy/kuberay-rayjob.yaml"
SNAPSHOT_SCRIPT = REPO / "deploy" / "cluster-snapshot.sh"
# An exact version tag, optionally with the digest the user checked (never a moving tag alone).
IMAGE = re.compile(r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<py>\d+)-cu(?P<cuda>\d+)(@sha256:[0-9a-f]{64})?$")
SECRETS_SCRIPT = REPO / "deploy" / "cluster-secrets.sh"
MLFLOW_SCRIPT = REPO / "deploy" / "mlflow-server.sh"
COMMAND_SECTIONS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                    "head_start_ray_commands", "worker_start_ray_commands")


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def _ray_up_checks(config: dict) -> dict:
    """What `ray up` does to a config before the provider's API is called (commands._bootstrap_config):
    merge Ray's defaults for the provider, then validate against ray-schema.json and the
    cross-field rules. The AWS step in between (filling `resources` from EC2 instance types) needs
    credentials; our node types declare `resources`, so the schema sees what the autoscaler will."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _rayjob() -> tuple[dict, list[dict]]:
    docs = [doc for doc in yaml.safe_load_all((REPO / KUBERAY).read_text()) if doc]
    jobs = [doc for doc in docs if doc["kind"] == "RayJob"]
    assert len(jobs) == 1, f"{KUBERAY} should hold exactly one RayJob"
    return jobs[0], docs


def _pod_specs(job: dict) -> list[tuple[str, dict]]:
    cluster = job["spec"]["rayClusterSpec"]
    specs = [("head", cluster["headGroupSpec"]["template"]["spec"])]
    specs += [(group["groupName"], group["template"]["spec"]) for group in cluster["workerGroupSpecs"]]
    return specs


# --- Ray's own validation -------------------------------------------------------------------


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_cluster_config_passes_ray_up_validation(name):
    prepared = _ray_up_checks(_load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def _rename(path: str, old: str, new: str):
    """A mutation that renames key `old` of the mapping at `path` ("a/b") to `new`."""

    def mutate(config: dict) -> None:
        target = config
        for key in path.split("/"):
            target = target[key]
        target[new] = target.pop(old)

    return mutate


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_misspelled_top_level_key_fails_the_schema(name):
    config = _load(name)
    config["setup_comands"] = config.pop("setup_commands")
    with pytest.raises(jsonschema.ValidationError, match="setup_comands"):
        _ray_up_checks(config)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        pytest.param(_rename("available_node_types/gpu_worker", "min_workers", "min_worker"),
                     jsonschema.ValidationError, "min_worker", id="node-type-key"),
        pytest.param(_rename("docker", "run_options", "run_option"),
                     jsonschema.ValidationError, "run_option", id="docker-key"),
        pytest.param(lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU="1"),
                     jsonschema.ValidationError, "'1' is not of type 'integer'", id="resource-type"),
        pytest.param(lambda c: c.update(head_node_type="hed"), ValueError, "head_node_type", id="head-type"),
        pytest.param(lambda c: c.update(max_workers=1), ValueError, "min_workers", id="min-above-max"),
    ],
)
def test_broken_aws_config_fails_validation(mutate, error, match):
    config = _load("cluster.yaml")
    mutate(config)
    with pytest.raises(error, match=match):
        _ray_up_checks(config)


# --- what ties the configs to this project -----------------------------------------------------


def _image_parts(image: str) -> dict[str, str]:
    match = IMAGE.match(image)
    assert match, f"{image!r} is not a pinned rayproject/ray:<ray>-py<python>-cu<cuda> image"
    return match.groupdict()


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_image_matches_installed_ray_and_project_python(name):
    parts = _image_parts(_load(name)["docker"]["image"])
    assert parts["ray"] == ray.__version__
    pinned = [dep for dep in _pyproject()["project"]["dependencies"] if dep.startswith("ray[")]
    assert pinned and pinned[0].endswith(f"=={parts['ray']}"), pinned
    assert f"py{parts['py']}" == _pyproject()["tool"]["ruff"]["target-version"]


def test_all_configs_use_one_image():
    images = {_load(name)["docker"]["image"] for name in CLUSTER_CONFIGS}
    job, _ = _rayjob()
    for _, spec in _pod_specs(job):
        images |= {c["image"] for c in spec.get("initContainers", []) + spec["containers"]}
    assert len(images) == 1, images


def test_aws_node_types_cpu_head_and_autoscaled_gpu_workers():
    config = _ray_up_checks(_load("cluster.yaml"))
    types = config["available_node_types"]
    head = types.pop(config["head_node_type"])
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] > 0
    assert head["max_workers"] == 0
    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type declares GPU resources"
    for node_type in gpu_types.values():
        assert node_type["resources"]["CPU"] >= 1
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= config["max_workers"]
        assert node_type["node_config"]["InstanceType"]


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_repo_is_synced_from_the_gitignore_filtered_snapshot_and_installed(name):
    config = _load(name)
    assert ".gitignore" in config["rsync_filter"]
    [(remote, local)] = [(r, loc) for r, loc in config["file_mounts"].items() if loc == "build/courselab"]
    assert str(SNAPSHOT_SCRIPT.relative_to(REPO)) in (REPO / name).read_text()
    # The snapshot is a build product: never committed, never inside another snapshot.
    ignored = subprocess.run(["git", "check-ignore", "-q", local], cwd=REPO)
    assert ignored.returncode == 0, f"{local} is not ignored by git"
    installs = [cmd for cmd in config["setup_commands"] if re.search(rf"\bpip install\b.*-e {re.escape(remote)}$", cmd)]
    assert installs, f"no setup command installs the project from {remote}"


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_start_commands_start_the_head_with_the_autoscaler_and_join_workers(name):
    config = _load(name)
    head = " ; ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--address=$RAY_HEAD_IP:6379" in " ; ".join(config["worker_start_ray_commands"])
    assert f"bash ~/courselab/{MLFLOW_SCRIPT.relative_to(REPO)}" in head


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_every_command_is_valid_bash(name):
    config = _load(name)
    for section in COMMAND_SECTIONS:
        for command in config.get(section, []):
            result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
            assert result.returncode == 0, f"{name}: {section}: {command!r}: {result.stderr}"
    for script in (SECRETS_SCRIPT, MLFLOW_SCRIPT):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


# --- hardening: authentication, interfaces, pinned inputs (issue 21) ---------------------------


def _commands(config: dict) -> list[str]:
    return [command for section in COMMAND_SECTIONS for command in config.get(section, [])]


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_ray_token_auth_on_every_node_with_the_synced_token(name):
    config = _load(name)
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    starts = [c for c in _commands(config) if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token ray start" in c for c in starts), starts
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    env_file = [c for c in config["head_setup_commands"] if "cluster.env" in c]
    assert env_file and "export RAY_AUTH_MODE=token" in env_file[0]
    assert str(SECRETS_SCRIPT.relative_to(REPO)) in (REPO / name).read_text()


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_dashboard_on_loopback_and_mlflow_on_private_ip_behind_basic_auth(name):
    config = _load(name)
    assert not [c for c in _commands(config) if "0.0.0.0" in c]
    [head_start] = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    hosts = re.findall(r"--dashboard-host[= ](\S+)", head_start)
    assert hosts in ([], ["127.0.0.1"]), hosts  # Ray's default is localhost
    server = MLFLOW_SCRIPT.read_text()
    code = "\n".join(line for line in server.splitlines() if not line.lstrip().startswith("#"))
    assert "0.0.0.0" not in code
    assert re.search(r'--host "\$ip"', code) and "ip=$(hostname -I | cut -d' ' -f1)" in code
    assert "--app-name basic-auth" in code and "MLFLOW_FLASK_SERVER_SECRET_KEY" in code
    assert "mlflow[auth]==3.17.2" in " ".join(config["head_setup_commands"])
    assert "mlflow==3.17.2" in _pyproject()["project"]["dependencies"]
    # The MLflow credentials reach every node as a file the MLflow client reads, not through Ray.
    assert config["file_mounts"]["~/.mlflow/credentials"] == "~/.courselab/mlflow-credentials"


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_no_moving_references(name):
    config = _load(name)
    assert "latest" not in json.dumps(config)  # comments aside: no "latest" image, AMI or tag
    assert config["docker"]["pull_before_run"] is False


def test_aws_nodes_share_one_explicit_ami_id():
    config = _load("cluster.yaml")
    amis = {t["node_config"]["ImageId"] for t in config["available_node_types"].values()}
    assert len(amis) == 1, amis
    assert re.fullmatch(r"ami-[0-9a-f]{8,17}", amis.pop())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_secrets_script_writes_private_token_and_credentials_once(tmp_path):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    fake_ray = bin_dir / "ray"  # what `ray get-auth-token --generate` does: write ~/.ray/auth_token
    fake_ray.write_text("#!/usr/bin/env bash\nmkdir -p ~/.ray\n"
                        "[ -s ~/.ray/auth_token ] || echo tok > ~/.ray/auth_token\n")
    fake_ray.chmod(0o755)
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin"}

    def run() -> dict[str, str]:
        subprocess.run(["bash", str(SECRETS_SCRIPT)], env=env, check=True, capture_output=True, timeout=60)
        creds = configparser.ConfigParser()
        creds.read(home / ".courselab" / "mlflow-credentials")
        return dict(creds["mlflow"])

    first = run()
    assert run() == first  # a rerun keeps the password the server was started with
    assert first["mlflow_tracking_username"] and len(first["mlflow_tracking_password"]) >= 32
    for secret in (home / ".ray" / "auth_token", home / ".courselab" / "mlflow-credentials"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("tar") is None, reason="needs git and tar")
def test_snapshot_holds_what_git_sees_and_ray_can_hash_it(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("/.venv/\n/.ray/\n/build/\n")
    (repo / "params.yaml").write_text("a: 1\n")
    (repo / "removed.py").write_text("")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    (repo / "params.yaml").write_text("a: 2\n")  # an uncommitted edit travels
    (repo / "new.py").write_text("")  # so does an untracked file
    (repo / "removed.py").unlink()
    (repo / ".venv").mkdir()
    (repo / ".venv" / "big.bin").write_bytes(b"0" * 1024)
    (repo / ".ray").mkdir()
    monkeypatch.chdir(repo)  # a relative socket path: AF_UNIX paths are limited to ~108 bytes
    with socket.socket(socket.AF_UNIX) as sock:  # what a local Ray leaves behind
        sock.bind(".ray/plasma_store")

        subprocess.run(["bash", str(SNAPSHOT_SCRIPT)], cwd=repo, check=True, capture_output=True)

    snapshot = repo / "build" / "courselab"
    files = {p.relative_to(snapshot) for p in snapshot.rglob("*")}
    files = {f.as_posix() for f in files if f.parts[0] != ".git"}
    assert files == {".gitignore", "params.yaml", "new.py"}
    assert (snapshot / "params.yaml").read_text() == "a: 2\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=snapshot, capture_output=True, text=True)
    assert sorted(status.stdout.splitlines()) == [" D removed.py", " M params.yaml", "?? new.py"]
    runtime_hash, contents_hash = hash_runtime_conf({"~/courselab": str(snapshot)}, [], {},
                                                    generate_file_mounts_contents_hash=True)
    assert runtime_hash and contents_hash


# --- KubeRay ------------------------------------------------------------------------------------


def test_rayjob_runs_the_pipeline_on_gpu_workers_and_shuts_down():
    job, _ = _rayjob()
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    assert re.search(r"\bcd /home/ray/courselab\b", spec["entrypoint"])
    assert re.search(r"\bdvc (repro|exp run)\b", spec["entrypoint"])
    for group in spec["rayClusterSpec"]["workerGroupSpecs"]:
        [container] = group["template"]["spec"]["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1, group["groupName"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for role, pod in _pod_specs(job):
        mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert "/home/ray/courselab" in mounts, role


def test_rayjob_params_overrides_are_valid_params():
    """Every `-S key=value` of the entrypoint names a real key with an allowed value."""
    job, _ = _rayjob()
    overrides = re.findall(r"-S\s+(\S+?)=(\S+)", job["spec"]["entrypoint"])
    assert overrides
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in overrides:
        *parents, leaf = key.split(".")
        section = params
        for part in parents:
            section = section[part]
        assert leaf in section, key
        section[leaf] = yaml.safe_load(value)
    parse_params(params)


def test_rayjob_logs_to_the_mlflow_service_in_the_same_file():
    job, docs = _rayjob()
    services = {(d["metadata"]["name"], p["port"]) for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"]}
    for role, pod in _pod_specs(job):
        for container in pod["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            uri = urlparse(env["MLFLOW_TRACKING_URI"])
            assert (uri.hostname.split(".")[0], uri.port) in services, f"{role}: {uri.geturl()}"
    runtime_env = yaml.safe_load(job["spec"].get("runtimeEnvYAML") or "{}") or {}
    forwarded = [k for k in runtime_env.get("env_vars", {}) if k.startswith(("MLFLOW_", "DVC_", "COURSELAB_"))]
    assert not forwarded, f"the stages forward {forwarded} themselves; Ray rejects a job that sets them twice"


def test_rayjob_token_auth_and_dashboard_only_with_it():
    job, _ = _rayjob()
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    if cluster["headGroupSpec"]["rayStartParams"].get("dashboard-host") == "0.0.0.0":
        assert cluster["authOptions"]["mode"] == "token"  # reachable in the cluster only with the token


def test_rayjob_mlflow_is_reachable_only_from_the_courselab_pods():
    job, docs = _rayjob()
    [server] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"]
    pod_labels = server["spec"]["template"]["metadata"]["labels"]
    [container] = server["spec"]["template"]["spec"]["containers"]
    if "--host=0.0.0.0" in container["command"] and "basic-auth" not in " ".join(container["command"]):
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"
                    and d["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()]
        assert policies, "MLflow listens on every interface without auth and no NetworkPolicy guards it"
        [policy] = policies
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        sources = [peer["podSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert sources == [{"app.kubernetes.io/part-of": "courselab"}]
        for role, _ in _pod_specs(job):  # the Ray pods are among the allowed sources
            group = (job["spec"]["rayClusterSpec"]["headGroupSpec"] if role == "head" else
                     next(g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"] if g["groupName"] == role))
            assert group["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "courselab", role


def test_rayjob_code_is_pinned_to_a_commit():
    job, _ = _rayjob()
    for role, pod in _pod_specs(job):
        [init] = pod["initContainers"]
        script = " ".join(init["args"])
        env = {e["name"]: e["value"] for e in init["env"]}
        assert "COURSELAB_GIT_REF" not in env and "--branch" not in script, role
        assert re.fullmatch(r"[0-9a-f]{40}", env["COURSELAB_GIT_COMMIT"]), role
        assert 'checkout --quiet --detach "$COURSELAB_GIT_COMMIT"' in script, role
    assert "latest" not in json.dumps(job)
