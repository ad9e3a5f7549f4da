"""metastream's streaming side: CLI, and (with the streaming issue) the Faust app, broker runner
and client SDK. Depends on ``learners`` and ``schemas``, never the other way round."""
