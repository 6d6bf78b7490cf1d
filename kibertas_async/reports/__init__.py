"""Reports of sharded runs: where shards store them (:mod:`.store`), and ``report merge`` (:mod:`.merge`,
:mod:`.cli`), which combines them into the run's one report, JUnit file, summary and message."""
