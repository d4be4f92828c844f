"""Project-wide pytest settings: the example suite and the benchmarks are not tests.

``examples/`` fails on purpose (it shows every status the plugin reports) and
``benchmarks/`` holds timing scripts, so neither is collected by ``pytest`` from the root.
"""

collect_ignore = ["examples", "benchmarks"]
