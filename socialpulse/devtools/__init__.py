"""The dev tools: the local stack, the demo simulator, the Slack stub, benchmarks and the soak
run. No runtime module imports them (an import-linter contract in ``make lint``)."""
