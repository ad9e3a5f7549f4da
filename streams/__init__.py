"""metastream's streaming side, in rooms named for their roles: ``client`` (the SDK an agent uses),
``records`` (what client and worker share), ``kafka`` (connections, topics, the embedded broker),
``worker`` (the stream worker), ``catalog`` (model presets and configs), ``audit``, ``simulation``
(the demo and simulated fleets), ``cli`` and ``settings``. Depends on ``learners`` and ``schemas``,
never the other way round; ``docs/layout.md`` names every module."""
