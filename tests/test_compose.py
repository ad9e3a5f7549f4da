"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the code."""

import json
from pathlib import Path

import yaml

from streams.worker.metrics import WorkerMetrics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def load(path):
    return yaml.safe_load((ROOT / path).read_text())


def test_services_and_their_wiring():
    """Three KRaft brokers in one quorum, topics with 3 replicas and min.insync.replicas 2, and two
    workers of one consumer group that know every broker and create topics that way."""
    compose = load("docker-compose.yml")
    services = compose["services"]
    brokers = {n: services[f"kafka-{n}"]["environment"] for n in (1, 2, 3)}
    assert set(services) == {"kafka-1", "kafka-2", "kafka-3", "worker-1", "worker-2", "prometheus", "grafana"}
    voters = {f"{n}@kafka-{n}:9093" for n in brokers}
    internal = []
    for n, kafka in brokers.items():
        assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in kafka  # KRaft
        assert kafka["KAFKA_NODE_ID"] == n and set(kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert kafka["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and kafka["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert kafka["KAFKA_LOG_RETENTION_MS"] == "-1"  # a topic created by anyone keeps the audit trail
        internal += [u.removeprefix("INTERNAL://") for u in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",") if u.startswith("INTERNAL://")]
    assert len({b["CLUSTER_ID"] for b in brokers.values()}) == 1
    workers = [services["worker-1"], services["worker-2"]]
    assert len({w["environment"]["METASTREAM_APP_ID"] for w in workers}) == 1  # one consumer group
    host_ports = [p.split(":")[0] for w in workers for p in w["ports"]]
    assert len(host_ports) == len(set(host_ports))
    for worker in workers:
        env = worker["environment"]
        assert set(env["METASTREAM_KAFKA"].split(",")) == set(internal)
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        assert settings.broker.replication_factor == 3 and settings.broker.min_insync_replicas == 2
        assert all(c["retention.ms"] == "-1" for c in settings.topics.configs().values())
        assert worker["build"] == "."
        port = int(env["METASTREAM_METRICS_PORT"])
        assert port == Settings().process.metrics_port and any(p.endswith(f":{port}") for p in worker["ports"])
        assert "--metrics-host" in worker["command"] and "0.0.0.0" in worker["command"]
        assert worker["command"][:2] == ["metastream", "worker"]


def test_prometheus_scrapes_both_workers():
    compose = load("docker-compose.yml")
    scrape = load("deploy/prometheus/prometheus.yml")["scrape_configs"][0]
    wanted = {f"{name}:{compose['services'][name]['environment']['METASTREAM_METRICS_PORT']}" for name in ("worker-1", "worker-2")}
    assert set(scrape["static_configs"][0]["targets"]) == wanted
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
    for name in ("worker-1", "worker-2"):
        worker = load("docker-compose.yml")["services"][name]
        assert worker["environment"]["METASTREAM_WEB_HOST"] == "0.0.0.0" and any(p.endswith(":6066") for p in worker["ports"])


def test_the_worker_image_installs_with_the_torch_pin():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "metastream" in dockerfile
