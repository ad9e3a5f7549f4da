import ssl

import faust
import pytest

from learners.errors import ConfigError
from streams.kafka.connection import client_options, faust_credentials


def test_plaintext_by_default_and_tls_or_sasl_from_the_variables():
    assert client_options({}) == {} and faust_credentials({}) is None
    tls = client_options({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "ssl"})
    assert tls["security_protocol"] == "SSL" and isinstance(tls["ssl_context"], ssl.SSLContext)
    env = {"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "METASTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "METASTREAM_KAFKA_SASL_USERNAME": "w", "METASTREAM_KAFKA_SASL_PASSWORD": "p"}
    both = client_options(env)
    assert both["sasl_mechanism"] == "SCRAM-SHA-512" and isinstance(both["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(env)
    assert isinstance(credentials, faust.SASLCredentials) and credentials.username == "w" and credentials.ssl_context is not None
    assert isinstance(faust_credentials({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}), faust.SSLCredentials)


@pytest.mark.parametrize("env, says", [
    ({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "choose one of PLAINTEXT"),
    ({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "METASTREAM_KAFKA_SASL_USERNAME": "w",
      "METASTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "choose one of PLAIN, SCRAM"),
    ({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "needs METASTREAM_KAFKA_SASL_USERNAME"),
    ({"METASTREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "METASTREAM_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "TLS context"),
])
def test_a_wrong_setting_says_what_to_do(env, says):
    with pytest.raises(ConfigError, match=says):
        client_options(env)


def test_with_sasl_an_agent_publishes_as_its_principal_and_not_as_another(monkeypatch):
    """The broker knows the client as its SASL user; the agent id it publishes under is that user:
    a different one is refused where the publisher is made or a batch is queued."""
    import asyncio

    import numpy as np
    import pytest

    from learners.errors import ConfigError
    from streams.client import ExperiencePublisher

    assert ExperiencePublisher("127.0.0.1:1", agent_id="bob").agent_id == "bob"  # plaintext: whatever it says
    for name, value in {"SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SASL_USERNAME": "alice", "SASL_PASSWORD": "x"}.items():
        monkeypatch.setenv(f"METASTREAM_KAFKA_{name}", value)
    assert ExperiencePublisher("127.0.0.1:1").agent_id == "alice"
    assert ExperiencePublisher("127.0.0.1:1", agent_id="alice").agent_id == "alice"
    with pytest.raises(ConfigError, match="cannot publish as SASL user 'alice'"):
        ExperiencePublisher("127.0.0.1:1", agent_id="bob")
    pub = ExperiencePublisher("127.0.0.1:1")
    with pytest.raises(ConfigError, match="'mallory' cannot publish"):
        asyncio.run(pub.publish("sine", np.zeros((1, 1)), np.zeros((1, 1)), ["t"], agent_id="mallory"))


def test_a_lingering_batch_the_broker_does_not_take_in_time_is_kept_and_sent_again(monkeypatch):
    """A linger timer's send has no caller to raise to: a batch the broker did not take in time (a
    paused broker) goes back to its queue and is sent a moment later, not dropped (a stub
    producer stands in for the broker: one piece, on its own)."""
    import asyncio

    import numpy as np
    from aiokafka.errors import KafkaTimeoutError

    from schemas import codec_for
    from schemas.experiences import id_columns
    import streams.client.publisher as publisher

    class PausedOnce:
        def __init__(self):
            self.sent, self.tries = [], 0

        async def send(self, topic, value, key):
            self.tries += 1
            if self.tries == 1:
                raise KafkaTimeoutError()
            self.sent.append(codec_for("ExperienceBatch").decode(value))

    monkeypatch.setattr(publisher, "RETRY_S", 0.01)

    async def run():
        pub = publisher.ExperiencePublisher("127.0.0.1:1", linger_ms=1)
        pub._producer = PausedOnce()
        ids = await pub.publish("sine", np.zeros((3, 1)), np.zeros((3, 1)), ["t"] * 3)
        await asyncio.sleep(0.2)
        return pub, ids

    pub, ids = asyncio.run(run())
    assert pub.send_retries == 1 and [id_columns(r)[0] for r in pub._producer.sent] == [ids]
