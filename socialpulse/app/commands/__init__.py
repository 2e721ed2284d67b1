"""The runtime subcommands of ``socialpulse``, one module per group."""
