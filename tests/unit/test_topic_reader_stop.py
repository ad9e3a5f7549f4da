"""``TopicReader.stop``: aiokafka's fetcher, closed while it backs off after a timed-out fetch, lets
the CancelledError of its own backoff out of ``consumer.stop()`` (it crashed ``metastream demo``
at its end twice on a busy machine). That one is not the caller's and is logged; a cancellation of
the task that calls ``stop`` still propagates. A stub consumer stands in for aiokafka's."""

import asyncio

import pytest

from streams.kafka.topics import TopicReader


class BackingOffConsumer:
    def __init__(self, wait: float = 0.0) -> None:
        self.wait, self.stopped = wait, False

    async def stop(self) -> None:
        await asyncio.sleep(self.wait)
        self.stopped = True
        raise asyncio.CancelledError  # what aiokafka's fetcher let out


def test_a_cancelled_error_from_the_consumers_own_backoff_is_logged_not_raised(caplog):
    reader = TopicReader("127.0.0.1:1", "models")
    reader._consumer = consumer = BackingOffConsumer()
    asyncio.run(reader.stop())
    assert consumer.stopped and reader._consumer is None
    assert "backing off" in caplog.text


def test_a_cancellation_of_the_caller_still_propagates():
    async def main() -> None:
        reader = TopicReader("127.0.0.1:1", "models")
        reader._consumer = BackingOffConsumer(wait=10.0)
        task = asyncio.create_task(reader.stop())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
