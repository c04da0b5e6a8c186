"""The in-process bus: which subscriptions an event reaches, as subscriptions come and go."""

from __future__ import annotations

from dragonopsd.bus import LocalBus, Subscription


def drain(sub: Subscription) -> list[str]:
    return [sub.queue.get_nowait().topic for _ in range(sub.queue.qsize())]


async def test_events_reach_the_subscriptions_of_the_moment() -> None:
    bus = LocalBus()
    every_server = bus.subscribe(["servers.*"])
    bus.publish("servers.1.metrics", {})
    bus.publish("monitors.7", {})
    assert drain(every_server) == ["servers.1.metrics"]

    # A subscription made after a topic was first seen still gets the topic's next events.
    one = bus.subscribe(["servers.1.metrics", "monitors.*"])
    bus.publish("servers.1.metrics", {})
    bus.publish("monitors.7", {})
    assert drain(every_server) == ["servers.1.metrics"]
    assert drain(one) == ["servers.1.metrics", "monitors.7"]

    # Once gone, a subscription gets nothing more; the others carry on.
    bus.unsubscribe(every_server)
    bus.publish("servers.1.metrics", {})
    bus.publish("servers.2.metrics", {})
    assert drain(every_server) == []
    assert drain(one) == ["servers.1.metrics"]


async def test_a_full_queue_drops_its_oldest_event() -> None:
    bus = LocalBus()
    sub = bus.subscribe(["t"], maxsize=2)
    for i in range(3):
        bus.publish("t", i)
    assert [sub.queue.get_nowait().data for _ in range(2)] == [1, 2] and sub.dropped == 1
