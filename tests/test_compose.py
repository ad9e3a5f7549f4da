"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the code."""

import json
from pathlib import Path

import yaml

from streams.metrics import WorkerMetrics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def load(path):
    return yaml.safe_load((ROOT / path).read_text())


def test_services_and_their_wiring():
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"kafka", "worker", "prometheus", "grafana"}
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in kafka  # KRaft
    internal = [u for u in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",") if u.startswith("INTERNAL://")][0]
    worker = services["worker"]
    assert worker["environment"]["METASTREAM_KAFKA"] == internal.removeprefix("INTERNAL://")
    assert worker["build"] == "."
    port = int(worker["environment"]["METASTREAM_METRICS_PORT"])
    assert port == Settings().metrics_port
    assert f"{port}:{port}" in worker["ports"]
    assert "--metrics-host" in worker["command"] and "0.0.0.0" in worker["command"]
    assert worker["command"][:2] == ["metastream", "worker"]


def test_prometheus_scrapes_the_worker_port():
    compose = load("docker-compose.yml")
    port = compose["services"]["worker"]["environment"]["METASTREAM_METRICS_PORT"]
    scrape = load("deploy/prometheus/prometheus.yml")["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == [f"worker:{port}"]
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).is_file()


def test_grafana_dashboard_queries_metrics_the_worker_exports():
    exported = {m.name for m in WorkerMetrics().registry.collect()}
    dash = json.loads((ROOT / "deploy/grafana/dashboards/metastream.json").read_text())
    import re

    for panel in dash["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"metastream_[a-z_]+", target["expr"]))
            for name in names:
                base = re.sub(r"_(total|bucket|count|sum)$", "", name)
                assert base in exported, f"{panel['title']}: {name} is not exported by the worker"
    for volume in load("docker-compose.yml")["services"]["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0].removeprefix("./")).is_dir()


def test_alerting_rules_watch_metrics_the_worker_exports_and_are_loaded():
    import re

    exported = {m.name for m in WorkerMetrics().registry.collect()}
    rules = load("deploy/prometheus/alerts.yml")["groups"][0]["rules"]
    assert len(rules) >= 7
    for rule in rules:
        for name in set(re.findall(r"metastream_[a-z0-9_]+", rule["expr"])):
            assert re.sub(r"_(total|bucket|count|sum)$", "", name) in exported, f"{rule['alert']}: {name} is not exported"
    assert "/etc/prometheus/alerts.yml" in load("deploy/prometheus/prometheus.yml")["rule_files"]
    mounts = load("docker-compose.yml")["services"]["prometheus"]["volumes"]
    assert any(m.startswith("./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml") for m in mounts)
    worker = load("docker-compose.yml")["services"]["worker"]
    assert worker["environment"]["METASTREAM_WEB_HOST"] == "0.0.0.0" and "6066:6066" in worker["ports"]


def test_the_worker_image_installs_with_the_torch_pin():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "metastream" in dockerfile
